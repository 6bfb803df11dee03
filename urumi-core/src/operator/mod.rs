//! Operator mode: `Store` objects (`stores.urumi.dev`) reconciled into stores through the
//! same [`Provisioner`] as every other door — same validation, limits, audit, state and
//! worker; no second provisioning path. Cargo feature `operator`; run by
//! `urumi-server --operator`.
//!
//! ```text
//!  kubectl apply Store ns/shop1 ─▶ Controller (kube-runtime) ─▶ reconcile(object)
//!    namespace ns labelled urumi.dev/tenant=T?  no ─▶ Event NoTenant, phase Ignored, nothing else
//!    finalizer urumi.dev/store (added before anything is created)
//!    Apply:   get shop1 ── absent ─▶ Provisioner::create(tenant T, idempotency key = the UID,
//!                                     managedBy "Store ns/shop1")
//!             ── present, Ready, spec.plan ≠ its plan ─▶ Provisioner::update(plan, managedBy);
//!                a refusal (plan_too_small) is a Warning Event; tried again each resync
//!             ── status by server-side apply (field manager urumi), only when it changed,
//!                and an Event when the phase or step moved
//!    Cleanup: Provisioner::delete(managedBy) ─▶ wait_deleted ─▶ finalizer removed
//!  Provisioner::changes (the durable feed) ── a store with managedBy ─▶ reconcile its object
//!  namespaces (reflector) ── label added/changed ─▶ reconcile the Stores in it
//! ```
//!
//! A store created by the HTTP API has no `managedBy` and is never touched here; one
//! created here answers `managed_externally` to a delete through any other door.

pub mod crd;

use std::sync::Arc;
use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use tokio_util::sync::CancellationToken;

pub use crd::{
    StoreCondition, StoreResource, StoreResourceSpec, StoreResourceStatus, StoreResourceUrls,
    crd_yaml,
};

use crate::error::{Error, ErrorKind, Result};
use crate::provisioner::{Caller, CreateStore, Provisioner, RequestOptions, UpdateStore};
use crate::store::{Status, Store, TenantId};

/// The namespace label naming the tenant its `Store` objects belong to.
pub const TENANT_LABEL: &str = "urumi.dev/tenant";
/// The finalizer that deletes the store before its object goes.
pub const FINALIZER: &str = "urumi.dev/store";
/// The field manager of status writes.
pub const FIELD_MANAGER: &str = "urumi";
/// How long a deletion may take before the reconcile is retried.
const DELETE_TIMEOUT: Duration = Duration::from_secs(600);
/// Periodic re-check of an object at rest.
const RESYNC: Duration = Duration::from_secs(300);
/// How soon a change the store was too busy for (a suspend during a plan change) is
/// asked for again.
const BUSY_RETRY: Duration = Duration::from_secs(5);

/// `Store <namespace>/<name>`: how a store records the object managing it.
pub fn manager_of(namespace: &str, name: &str) -> String {
    format!("Store {namespace}/{name}")
}

/// The object a `managedBy` value names, if it names a `Store`.
pub fn object_of(manager: &str) -> Option<ObjectRef<StoreResource>> {
    let (ns, name) = manager.strip_prefix("Store ")?.split_once('/')?;
    Some(ObjectRef::new(name).within(ns))
}

/// The reconciler's shared context.
pub struct Operator {
    provisioner: Arc<dyn Provisioner>,
    client: Client,
    recorder: Recorder,
    namespaces: reflector::Store<Namespace>,
    namespace_writer: Option<reflector::store::Writer<Namespace>>,
}

impl std::fmt::Debug for Operator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Operator").finish_non_exhaustive()
    }
}

/// Why a reconcile failed; it is retried after a few seconds.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The provisioner or the state said so.
    #[error(transparent)]
    Urumi(#[from] Error),
    /// Adding or removing the finalizer, or the reconcile under it, failed.
    #[error("{0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
}

impl Operator {
    /// An operator over `provisioner`, talking to the cluster through `client`;
    /// `instance` names this replica in the Events it writes (a pod name).
    pub fn new(provisioner: Arc<dyn Provisioner>, client: Client, instance: &str) -> Self {
        let reporter = Reporter {
            controller: "urumi".to_owned(),
            instance: Some(instance.to_owned()),
        };
        let (namespaces, writer) = reflector::store();
        Operator {
            recorder: Recorder::new(client.clone(), reporter),
            provisioner,
            client,
            namespaces,
            namespace_writer: Some(writer),
        }
    }

    /// Reconciles `Store` objects in every namespace until `shutdown`.
    /// Errors: `invalid_config` when the CRD is not installed or cannot be listed.
    pub async fn run(mut self, shutdown: CancellationToken) -> Result<()> {
        let stores: Api<StoreResource> = Api::all(self.client.clone());
        if let Err(e) = stores.list(&ListParams::default().limit(1)).await {
            return Err(Error::InvalidConfig {
                message: format!(
                    "operator mode needs the Store CRD (stores.urumi.dev) installed and \
                     readable: {}; install charts/urumi/crds/stores.urumi.dev.yaml",
                    Error::from(e).tenant_message()
                ),
            });
        }
        let writer = self
            .namespace_writer
            .take()
            .ok_or_else(|| Error::Internal {
                message: "operator run twice".to_owned(),
            })?;
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        let namespace_events = reflector::reflector(
            writer,
            watcher(namespaces, watcher::Config::default().any_semantic()),
        )
        .default_backoff()
        .applied_objects();

        let controller = Controller::new(stores, watcher::Config::default().any_semantic());
        let objects = controller.store();
        let triggers = feed_triggers(
            self.provisioner.clone(),
            objects.clone(),
            self.recorder.clone(),
            shutdown.clone(),
        );
        let context = Arc::new(self);
        let stop = shutdown.clone();
        tracing::info!("operator: reconciling Store objects (stores.urumi.dev)");
        controller
            .watches_stream(namespace_events, move |ns: Namespace| {
                let name = ns.name_any();
                objects
                    .state()
                    .into_iter()
                    .filter(|s| s.namespace().as_deref() == Some(name.as_str()))
                    .map(|s| ObjectRef::from_obj(&*s))
                    .collect::<Vec<_>>()
            })
            .reconcile_on(triggers)
            .graceful_shutdown_on(async move { stop.cancelled().await })
            .run(reconcile, error_policy, context)
            .for_each(|result| async move {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "operator: reconcile");
                }
            })
            .await;
        tracing::info!("operator: stopped");
        Ok(())
    }

    /// The tenant of `namespace` from its label, or why there is none.
    async fn tenant_of(&self, namespace: &str) -> std::result::Result<TenantId, String> {
        self.namespaces.wait_until_ready().await.ok();
        let ns = self
            .namespaces
            .get(&ObjectRef::new(namespace))
            .ok_or_else(|| format!("namespace {namespace} is not known yet"))?;
        let label = ns.labels().get(TENANT_LABEL).ok_or_else(|| {
            format!(
                "namespace {namespace} has no {TENANT_LABEL} label, so its Store objects \
                 belong to no tenant; nothing is provisioned"
            )
        })?;
        TenantId::new(label.clone()).map_err(|e| {
            format!("namespace {namespace}: label {TENANT_LABEL}={label:?} is not a tenant: {e}")
        })
    }

    async fn publish(&self, obj: &StoreResource, warning: bool, reason: &str, note: String) {
        publish(&self.recorder, obj, warning, reason, note).await;
    }

    /// Writes `status` when it differs from the object's, by server-side apply.
    async fn write_status(&self, obj: &StoreResource, status: StoreResourceStatus) -> Result<()> {
        if obj.status.as_ref() == Some(&status) {
            return Ok(());
        }
        let api: Api<StoreResource> =
            Api::namespaced(self.client.clone(), &obj.namespace().unwrap_or_default());
        let patch = serde_json::json!({
            "apiVersion": "urumi.dev/v1alpha1",
            "kind": "Store",
            "status": status,
        });
        match api
            .patch_status(
                &obj.name_any(),
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&patch),
            )
            .await
        {
            Ok(_) => Ok(()),
            // Gone meanwhile (its finalizer already removed): nothing to report on.
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The status of `store`, the record `obj` manages (its Events come from the feed).
    async fn report(&self, obj: &StoreResource, store: &Store) -> Result<()> {
        self.write_status(obj, status_of(obj, store)).await
    }

    /// The object was not turned into a store: `phase` (`Refused`, `Ignored`) and why.
    async fn refuse(
        &self,
        obj: &StoreResource,
        phase: &str,
        reason: &str,
        message: String,
    ) -> Result<()> {
        let already = obj.status.as_ref().and_then(|s| s.phase.as_deref()) == Some(phase)
            && obj.status.as_ref().and_then(|s| s.message.as_deref()) == Some(message.as_str());
        if !already {
            self.publish(obj, true, reason, message.clone()).await;
        }
        let generation = obj.metadata.generation;
        let old = obj.status.as_ref();
        let status = StoreResourceStatus {
            phase: Some(phase.to_owned()),
            message: Some(message.clone()),
            observed_generation: generation,
            conditions: vec![
                condition(old, generation, "Ready", false, reason, &message),
                condition(
                    old,
                    generation,
                    "Failed",
                    phase == "Refused",
                    reason,
                    &message,
                ),
            ],
            ..Default::default()
        };
        self.write_status(obj, status).await
    }

    async fn apply(
        &self,
        obj: Arc<StoreResource>,
        tenant: std::result::Result<TenantId, String>,
    ) -> Result<Action> {
        let tenant = match tenant {
            Ok(t) => t,
            Err(why) => {
                // The label went away after the store was made: keep the store, say so.
                self.refuse(&obj, "Ignored", "NoTenant", why).await?;
                return Ok(Action::requeue(Duration::from_secs(60)));
            }
        };
        let name = obj.name_any();
        let manager = manager_of(&obj.namespace().unwrap_or_default(), &name);
        let admin = Caller::admin(manager.clone(), tenant.clone());
        match self.provisioner.get(&admin, &name).await {
            Ok(store) if store.managed_by.as_deref() == Some(manager.as_str()) => {
                let store = self
                    .change_plan(&obj, &admin, store, manager.clone())
                    .await?;
                let store = self.suspend_or_resume(&obj, &admin, store, manager).await?;
                self.report(&obj, &store).await?;
                // A change asked for while the store was busy is applied once it is Ready.
                let pending = obj.spec.suspended.unwrap_or(false) != store.suspended;
                Ok(Action::requeue(if pending { BUSY_RETRY } else { RESYNC }))
            }
            Ok(_) => {
                let why = format!(
                    "a store named {name} already exists and is not managed by this object; \
                     choose another name"
                );
                self.refuse(&obj, "Refused", "NameTaken", why).await?;
                Ok(Action::requeue(RESYNC))
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {
                let caller = Caller::tenant(manager.clone(), tenant);
                let request = CreateStore {
                    name: name.clone(),
                    engine: obj.spec.engine.clone(),
                    plan: obj.spec.plan.clone(),
                    tenant: None,
                };
                let uid = obj.uid().unwrap_or_default();
                let opts = RequestOptions::idempotency_key(uid).managed_by(manager);
                match self.provisioner.create(&caller, request, opts).await {
                    Ok(store) => {
                        self.report(&obj, &store).await?;
                        Ok(Action::requeue(RESYNC))
                    }
                    Err(e) if e.is_retryable() => Err(e),
                    Err(e) => {
                        let reason = camel(e.kind().as_str());
                        self.refuse(&obj, "Refused", &reason, e.tenant_message())
                            .await?;
                        Ok(Action::await_change())
                    }
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Asks for the object's plan when the Ready store runs another one. A refusal
    /// (`plan_too_small`, …) becomes a Warning Event and the store stays as it is; the
    /// next resync asks again (the store may have shrunk meanwhile).
    async fn change_plan(
        &self,
        obj: &StoreResource,
        admin: &Caller,
        store: Store,
        manager: String,
    ) -> Result<Store> {
        let wanted = obj.spec.plan.as_deref().unwrap_or("small");
        let serving = matches!(store.status, Status::Ready | Status::Degraded);
        if wanted == store.plan.as_str() || !serving {
            return Ok(store);
        }
        let opts = RequestOptions::default().managed_by(manager);
        let change = UpdateStore::plan(wanted);
        match self
            .provisioner
            .update(admin, store.name.as_str(), change, opts)
            .await
        {
            Ok(updated) => Ok(updated),
            Err(e) if e.is_retryable() => Err(e),
            Err(e) => {
                let reason = camel(e.kind().as_str());
                self.publish(obj, true, &reason, e.tenant_message()).await;
                Ok(store)
            }
        }
    }

    /// Suspends or resumes the store as `spec.suspended` asks, once it is serving (Ready or
    /// Degraded); busy, it is asked again at the next reconcile.
    async fn suspend_or_resume(
        &self,
        obj: &StoreResource,
        admin: &Caller,
        store: Store,
        manager: String,
    ) -> Result<Store> {
        let wanted = obj.spec.suspended.unwrap_or(false);
        let serving = matches!(store.status, Status::Ready | Status::Degraded);
        if wanted == store.suspended || !serving {
            return Ok(store);
        }
        let opts = RequestOptions::default().managed_by(manager);
        let name = store.name.as_str();
        if wanted {
            self.provisioner.suspend(admin, name, opts).await
        } else {
            self.provisioner.resume(admin, name, opts).await
        }
    }

    async fn cleanup(&self, obj: Arc<StoreResource>) -> Result<Action> {
        let name = obj.name_any();
        let manager = manager_of(&obj.namespace().unwrap_or_default(), &name);
        let operator = TenantId::new("urumi-operator")?;
        let admin = Caller::admin(manager.clone(), operator);
        match self.provisioner.get(&admin, &name).await {
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Action::await_change()),
            Err(e) => return Err(e),
            // Not ours (an API store of the same name, or another object's): leave it.
            Ok(store) if store.managed_by.as_deref() != Some(manager.as_str()) => {
                return Ok(Action::await_change());
            }
            Ok(_) => {}
        }
        let opts = RequestOptions::default().managed_by(manager);
        let store = self.provisioner.delete(&admin, &name, opts).await?;
        self.report(&obj, &store).await?;
        self.provisioner
            .wait_deleted(&admin, &name, DELETE_TIMEOUT)
            .await?;
        self.publish(
            &obj,
            false,
            "Deleted",
            format!("store {name} deleted: namespace, release, volumes and record are gone"),
        )
        .await;
        Ok(Action::await_change())
    }
}

async fn reconcile(
    obj: Arc<StoreResource>,
    ctx: Arc<Operator>,
) -> std::result::Result<Action, ReconcileError> {
    let namespace = obj.namespace().unwrap_or_default();
    let tenant = ctx.tenant_of(&namespace).await;
    let ours = obj.finalizers().iter().any(|f| f == FINALIZER);
    if let Err(why) = &tenant
        && !ours
    {
        // Never ours: no finalizer, no store; only say why (until the label appears).
        if obj.meta().deletion_timestamp.is_none() {
            ctx.refuse(&obj, "Ignored", "NoTenant", why.clone()).await?;
        }
        return Ok(Action::requeue(Duration::from_secs(60)));
    }
    let api: Api<StoreResource> = Api::namespaced(ctx.client.clone(), &namespace);
    finalizer(&api, FINALIZER, obj, |event| async {
        match event {
            FinalizerEvent::Apply(obj) => ctx.apply(obj, tenant).await,
            FinalizerEvent::Cleanup(obj) => ctx.cleanup(obj).await,
        }
    })
    .await
    .map_err(|e| ReconcileError::Finalizer(Box::new(e)))
}

fn error_policy(obj: Arc<StoreResource>, error: &ReconcileError, _ctx: Arc<Operator>) -> Action {
    if let ReconcileError::Finalizer(e) = error
        && let kube::runtime::finalizer::Error::RemoveFinalizer(kube::Error::Api(status)) = &**e
        && status.code == 404
    {
        // A second reconcile of an object whose finalizer the first one removed: done.
        return Action::await_change();
    }
    tracing::warn!(store = %obj.name_any(), error = %error, "operator: reconcile failed; retrying in 5 s");
    Action::requeue(Duration::from_secs(5))
}

/// The Event reason of a store's state: one per step while provisioning, since the
/// recorder folds Events of one reason into a series.
fn event_reason(store: &Store) -> String {
    match store.status {
        Status::Pending => "Accepted".to_owned(),
        Status::Provisioning => camel(store.step.as_str()),
        Status::Ready => "Ready".to_owned(),
        Status::Failed => "Failed".to_owned(),
        Status::Deleting => "Deleting".to_owned(),
        Status::Updating => "Updating".to_owned(),
        Status::Degraded => "Degraded".to_owned(),
    }
}

/// An Event on `obj`.
async fn publish(
    recorder: &Recorder,
    obj: &StoreResource,
    warning: bool,
    reason: &str,
    note: String,
) {
    let event = Event {
        type_: if warning {
            EventType::Warning
        } else {
            EventType::Normal
        },
        reason: reason.to_owned(),
        note: Some(note),
        action: "Reconcile".to_owned(),
        secondary: None,
    };
    if let Err(e) = recorder.publish(&event, &obj.object_ref(&())).await {
        tracing::warn!(error = %e, store = %obj.name_any(), "operator: cannot write an Event");
    }
}

/// Every change of a store some object manages: an Event on that object for each step
/// and failure (every change is seen here, where reconciles coalesce), and the object's
/// reference to reconcile its status. Restarts from the last change seen when the feed
/// breaks, until `shutdown`.
fn feed_triggers(
    provisioner: Arc<dyn Provisioner>,
    objects: reflector::Store<StoreResource>,
    recorder: Recorder,
    shutdown: CancellationToken,
) -> impl futures::Stream<Item = ObjectRef<StoreResource>> + Send + 'static {
    let (tx, rx) = futures::channel::mpsc::unbounded();
    tokio::spawn(async move {
        // (status, step) last announced per store, so each move is one Event.
        let mut announced: std::collections::HashMap<String, (Status, crate::store::Step)> =
            std::collections::HashMap::new();
        let Ok(operator) = TenantId::new("urumi-operator") else {
            return;
        };
        let caller = Caller::admin("urumi-operator", operator);
        let mut after = None;
        while !shutdown.is_cancelled() {
            let mut changes = provisioner.changes(&caller, after);
            loop {
                let next = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    next = changes.next() => next,
                };
                match next {
                    Some(Ok(change)) => {
                        after = Some(change.seq);
                        let Some(object) = change.store.managed_by.as_deref().and_then(object_of)
                        else {
                            continue;
                        };
                        let store = &change.store;
                        let key = store.name.to_string();
                        if change.kind == crate::state::ChangeKind::Deleted {
                            // The finalizer's reconcile is already waiting for this.
                            announced.remove(&key);
                            continue;
                        } else if announced.get(&key) != Some(&(store.status, store.step)) {
                            announced.insert(key, (store.status, store.step));
                            if let Some(obj) = objects.get(&object) {
                                let warning =
                                    matches!(store.status, Status::Failed | Status::Degraded);
                                let reason = event_reason(store);
                                let note = format!(
                                    "{} ({}): {}",
                                    store.status,
                                    store.step.as_str(),
                                    store.message
                                );
                                publish(&recorder, &obj, warning, &reason, note).await;
                            }
                        }
                        if tx.unbounded_send(object).is_err() {
                            return;
                        }
                    }
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "operator: change feed broke; following again");
                        if e.kind() == ErrorKind::CursorExpired {
                            // Objects missed meanwhile are re-read by the periodic resync.
                            after = None;
                        }
                        break;
                    }
                    None => return,
                }
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    rx
}

/// The status a store gives its object.
pub fn status_of(obj: &StoreResource, store: &Store) -> StoreResourceStatus {
    let generation = obj.metadata.generation;
    let old = obj.status.as_ref();
    let ready = store.status == Status::Ready;
    let failed = store.status == Status::Failed;
    let wanted_plan = obj.spec.plan.as_deref().unwrap_or("small");
    let mut conditions = vec![
        condition(
            old,
            generation,
            "Ready",
            ready,
            store.status.as_str(),
            &store.message,
        ),
        condition(
            old,
            generation,
            "Failed",
            failed,
            if failed { "StepFailed" } else { "NotFailed" },
            &if failed {
                format!("{} failed: {}", store.step.as_str(), store.message)
            } else {
                String::new()
            },
        ),
    ];
    let updating = store.status == Status::Updating;
    let plan_applied = wanted_plan == store.plan.as_str() && !updating;
    let (reason, message) = if plan_applied {
        ("Applied", format!("the store runs plan {}", store.plan))
    } else if updating {
        (
            "Applying",
            format!("changing the store's plan to {}", store.plan),
        )
    } else {
        (
            "NotApplied",
            format!(
                "the store stays on plan {} (asked: {wanted_plan}); the Store's Warning \
                 Events say why",
                store.plan
            ),
        )
    };
    conditions.push(condition(
        old,
        generation,
        "PlanApplied",
        plan_applied,
        reason,
        &message,
    ));
    let suspended = store.suspended && !updating;
    let (reason, message) = match (store.suspended, updating) {
        (true, false) => ("Suspended", "no pod runs; volumes and credentials kept"),
        (true, true) => ("Suspending", "stopping the store's workloads"),
        (false, _) => ("Serving", ""),
    };
    conditions.push(condition(
        old,
        generation,
        "Suspended",
        suspended,
        reason,
        message,
    ));
    let urls = (store.urls.storefront.is_some() || store.urls.admin.is_some()).then(|| {
        StoreResourceUrls {
            storefront: store.urls.storefront.clone(),
            admin: store.urls.admin.clone(),
        }
    });
    StoreResourceStatus {
        phase: Some(store.status.as_str().to_owned()),
        step: Some(store.step.as_str().to_owned()),
        message: Some(store.message.clone()),
        urls,
        observed_generation: generation,
        conditions,
        ready_at: store
            .ready_at
            .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true)),
        provisioning_seconds: store.provisioning_seconds,
    }
}

/// A condition, keeping the old one's transition time when its status did not change.
fn condition(
    old: Option<&StoreResourceStatus>,
    generation: Option<i64>,
    type_: &str,
    status: bool,
    reason: &str,
    message: &str,
) -> StoreCondition {
    let status = if status { "True" } else { "False" };
    let since = old
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == type_))
        .filter(|c| c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true));
    StoreCondition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: camel(reason),
        message: message.to_owned(),
        last_transition_time: since,
        observed_generation: generation,
    }
}

/// `quota_exceeded` → `QuotaExceeded`; `Ready` stays `Ready`.
fn camel(code: &str) -> String {
    code.split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect::<String>())
                .unwrap_or_default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manager_names_its_object_and_back() {
        let m = manager_of("team-a", "shop1");
        assert_eq!(m, "Store team-a/shop1");
        let r = object_of(&m).expect("a Store reference");
        assert_eq!(r.name, "shop1");
        assert_eq!(r.namespace.as_deref(), Some("team-a"));
        assert!(object_of("Deployment x/y").is_none());
    }

    #[test]
    fn reasons_are_camel_case() {
        assert_eq!(camel("quota_exceeded"), "QuotaExceeded");
        assert_eq!(camel("Ready"), "Ready");
    }

    #[test]
    fn status_follows_the_store_and_keeps_transition_times() {
        let mut obj = StoreResource::new("shop1", StoreResourceSpec::default());
        obj.metadata.namespace = Some("team-a".to_owned());
        obj.metadata.generation = Some(2);
        let spec = crate::store::StoreSpec::new(
            crate::store::StoreName::new("shop1").expect("name"),
            TenantId::new("acme").expect("tenant"),
        );
        let mut store = Store::new(spec, "store-shop1");
        let first = status_of(&obj, &store);
        assert_eq!(first.phase.as_deref(), Some("Pending"));
        assert_eq!(first.observed_generation, Some(2));
        let ready = first
            .conditions
            .iter()
            .find(|c| c.type_ == "Ready")
            .expect("Ready");
        assert_eq!(ready.status, "False");

        obj.status = Some(first.clone());
        store.mark_ready();
        let second = status_of(&obj, &store);
        let ready = second
            .conditions
            .iter()
            .find(|c| c.type_ == "Ready")
            .expect("Ready");
        assert_eq!(ready.status, "True");
        let failed = second
            .conditions
            .iter()
            .find(|c| c.type_ == "Failed")
            .expect("Failed");
        let failed_before = first
            .conditions
            .iter()
            .find(|c| c.type_ == "Failed")
            .expect("Failed");
        assert_eq!(
            failed.last_transition_time,
            failed_before.last_transition_time
        );
        assert!(second.ready_at.is_some());
    }
}
