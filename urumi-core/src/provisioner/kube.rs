//! [`KubeProvisioner`]: the [`Provisioner`] over a Kubernetes cluster, built by
//! [`KubeProvisionerBuilder`] from a `kube::Client` (or a kubeconfig) and the three ports.
//!
//! ```text
//!  KubeProvisioner::builder(client, state)           (or ::from_kubeconfig(path, state).await)
//!      .helm(..) .audit(..) .settings(..) .build()?   (inside a Tokio runtime, else invalid_config)
//!        └─▶ ReadinessWatcher (3 cluster-wide watches) ─▶ KubeRuntime ─▶ Orchestrator::start
//!        └─▶ FeedPump (the change feed's head)
//!  drop(last handle) ─▶ shutdown begins: no new claims, helm finishes (grace), watches stop
//! ```
//!
//! Every changing call runs its write, audit and wake-up in a task of its own, so the
//! caller dropping its future (a disconnected client) cannot cut it in half.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use super::feed::FeedPump;
use super::idempotency::{Idempotent, Outcome as Replay};
use super::{
    Caller, ChangeStream, CreateStore, Provisioner, ProvisionerSettings, RequestOptions, Role,
    StoreCredentials, UpdateStore,
};
use crate::audit::{AuditEvent, AuditQuery, AuditSink, Outcome, StateSink};
use crate::engine::Engines;
use crate::error::{Error, ErrorKind, Result};
use crate::guardrails::{Guardrails, GuardrailsConfig, STORE_LABEL};
use crate::helm::{HelmCli, HelmDriver};
use crate::orchestrator::{
    KubeRuntime, KubeRuntimeSettings, Orchestrator, ReadinessWatcher, StoreChange,
};
use crate::state::{InsertOptions, ListQuery, Page, StateStore};
use crate::store::{
    EngineId, Plan, PlanEntry, Status, Step, Store, StoreName, StoreRevision, StoreSpec,
    StoreUsage, TenantId,
};

/// Builds a [`KubeProvisioner`].
pub struct KubeProvisionerBuilder {
    client: kube::Client,
    state: Arc<dyn StateStore>,
    helm: Option<Arc<dyn HelmDriver>>,
    audit: Option<Arc<dyn AuditSink>>,
    engines: Engines,
    settings: ProvisionerSettings,
    kubeconfig: Option<std::path::PathBuf>,
}

impl KubeProvisionerBuilder {
    /// The Helm driver; [`HelmCli`] with `helm` from `PATH` by default, aimed at the
    /// same cluster as the client (the kubeconfig given to
    /// [`KubeProvisioner::from_kubeconfig`], else `$KUBECONFIG` or in-cluster).
    pub fn helm(mut self, helm: Arc<dyn HelmDriver>) -> Self {
        self.helm = Some(helm);
        self
    }

    /// Where audit events go; the state store's own table by default.
    pub fn audit(mut self, audit: Arc<dyn AuditSink>) -> Self {
        self.audit = Some(audit);
        self
    }

    /// The engines stores may use; WooCommerce by default.
    pub fn engines(mut self, engines: Engines) -> Self {
        self.engines = engines;
        self
    }

    /// Settings.
    pub fn settings(mut self, settings: ProvisionerSettings) -> Self {
        self.settings = settings;
        self
    }

    /// Starts the readiness watches, the change-feed pump and the background worker
    /// (which resumes every store not at rest).
    ///
    /// Errors: `invalid_config` for bad settings, or when called outside a Tokio
    /// runtime (nothing is started then).
    pub fn build(self) -> Result<KubeProvisioner> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::InvalidConfig {
                message: "KubeProvisioner must be built inside a Tokio runtime \
                          (it starts background tasks)"
                    .to_owned(),
            });
        }
        self.settings.validate()?;
        let helm = match self.helm {
            Some(helm) => helm,
            None => {
                // Found now, not at the first store: a missing helm is a setup error.
                let resident = match &self.settings.helm_resident {
                    None => None,
                    Some(name) => match crate::helm::find_in_path(name) {
                        Some(path) => Some(path),
                        None => {
                            return Err(Error::InvalidConfig {
                                message: format!(
                                    "helmResident: {name} was not found or is not executable \
                                     (build it with `make helm-resident`, or unset helmResident \
                                     to run the helm binary)"
                                ),
                            });
                        }
                    },
                };
                if resident.is_none() && crate::helm::find_in_path("helm").is_none() {
                    return Err(Error::InvalidConfig {
                        message: "helm was not found on PATH: install helm 3 \
                                  (https://helm.sh/docs/intro/install/) or give the \
                                  builder a HelmDriver"
                            .to_owned(),
                    });
                }
                // Histories come from helm's release records through this client (one
                // API call, no helm process); installs, upgrades and uninstalls run helm,
                // or the resident helm.
                let mut cli = HelmCli::builder()
                    .timeout(Duration::from_secs(self.settings.helm_timeout_secs))
                    .openapi_validation(self.settings.helm_openapi_validation)
                    .read_history_from(self.client.clone());
                if let Some(path) = resident {
                    cli = cli.resident(path);
                }
                if let Some(path) = &self.kubeconfig {
                    cli = cli.kubeconfig(path.clone());
                }
                Arc::new(cli.build())
            }
        };
        let audit_in_state = self.audit.is_none();
        let audit = self
            .audit
            .unwrap_or_else(|| Arc::new(StateSink::new(self.state.clone())));
        let guardrails_config = self.settings.guardrails()?;
        let readiness = ReadinessWatcher::start(&self.client, STORE_LABEL);
        let runtime = Arc::new(KubeRuntime::new(
            Guardrails::new(self.client.clone(), guardrails_config.clone()),
            self.engines.clone(),
            helm,
            readiness.clone(),
            KubeRuntimeSettings {
                plans: self.settings.plans.clone(),
                engine: self.settings.engine(),
                namespace_deletion_timeout: Duration::from_secs(
                    self.settings.namespace_deletion_timeout_secs,
                ),
                store_access: self.settings.store_access.clone(),
            },
        ));
        let orchestrator = Orchestrator::start(
            self.state.clone(),
            audit.clone(),
            runtime.clone(),
            self.settings.orchestrator.clone(),
        );
        orchestrator.watch_health(readiness);
        let stop = CancellationToken::new();
        let feed = FeedPump::start(self.state.clone(), orchestrator.subscribe(), stop.clone());
        let retention = self.settings.change_retention();
        let inner = Arc::new(Inner {
            client: self.client,
            state: self.state,
            audit,
            audit_in_state,
            engines: self.engines,
            runtime,
            orchestrator,
            guardrails: guardrails_config,
            settings: self.settings,
            feed,
            stop,
        });
        tokio::spawn(housekeeping(inner.clone(), retention));
        Ok(KubeProvisioner {
            _lifetime: Arc::new(Lifetime {
                inner: inner.clone(),
            }),
            inner,
        })
    }
}

/// Provisions stores on a Kubernetes cluster. See [`Provisioner`].
///
/// Cloning gives another handle to the same provisioner; when the last handle is
/// dropped, shutdown begins as with [`Provisioner::shutdown`] (without waiting for it).
#[derive(Clone)]
pub struct KubeProvisioner {
    inner: Arc<Inner>,
    _lifetime: Arc<Lifetime>,
}

struct Inner {
    client: kube::Client,
    state: Arc<dyn StateStore>,
    audit: Arc<dyn AuditSink>,
    /// `audit` is the state store's own table: `store.create` goes in with the insert.
    audit_in_state: bool,
    engines: Engines,
    runtime: Arc<KubeRuntime>,
    orchestrator: Orchestrator,
    guardrails: GuardrailsConfig,
    settings: ProvisionerSettings,
    feed: FeedPump,
    /// Stops the feed pump, followers and housekeeping.
    stop: CancellationToken,
}

/// Held only by user-facing handles: its drop begins the shutdown.
struct Lifetime {
    inner: Arc<Inner>,
}

impl Drop for Lifetime {
    fn drop(&mut self) {
        self.inner.begin_shutdown();
        if tokio::runtime::Handle::try_current().is_ok() {
            let inner = self.inner.clone();
            tokio::spawn(async move { inner.shutdown().await });
        }
    }
}

impl std::fmt::Debug for KubeProvisioner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeProvisioner")
            .field("state", &self.inner.state)
            .field("orchestrator", &self.inner.orchestrator)
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

impl KubeProvisioner {
    /// A builder over `client` (the cluster) and `state` (where records live).
    pub fn builder(client: kube::Client, state: Arc<dyn StateStore>) -> KubeProvisionerBuilder {
        KubeProvisionerBuilder {
            client,
            state,
            helm: None,
            audit: None,
            engines: Engines::default(),
            settings: ProvisionerSettings::default(),
            kubeconfig: None,
        }
    }

    /// A builder for the cluster of a kubeconfig file (`None`: `$KUBECONFIG`, then
    /// `~/.kube/config`, then in-cluster); the default helm driver uses the same file,
    /// so both always target one cluster.
    /// Errors: `invalid_config` naming the file when it cannot be read or used.
    pub async fn from_kubeconfig(
        kubeconfig: Option<&std::path::Path>,
        state: Arc<dyn StateStore>,
    ) -> Result<KubeProvisionerBuilder> {
        let client = crate::kubeconfig::client(kubeconfig).await?;
        let mut builder = Self::builder(client, state);
        builder.kubeconfig = kubeconfig.map(std::path::Path::to_path_buf);
        Ok(builder)
    }

    /// Everything an adapter needs in one call: opens the state store at `state_url`
    /// (`sqlite://PATH`, `postgres://…`, `memory:`), a client of the cluster of
    /// `kubeconfig` (`None`: `$KUBECONFIG`, then in-cluster), and builds a provisioner
    /// with `settings` and the default helm driver (`helm` from `PATH`, same cluster).
    /// Errors: `invalid_config` (settings, kubeconfig, helm missing), the state
    /// store's errors; nothing is started on error.
    pub async fn open(
        state_url: &str,
        kubeconfig: Option<&std::path::Path>,
        settings: ProvisionerSettings,
    ) -> Result<KubeProvisioner> {
        settings.validate()?;
        let state = crate::state::open(state_url).await?;
        Self::from_kubeconfig(kubeconfig, state)
            .await?
            .settings(settings)
            .build()
    }

    /// The Kubernetes client it uses (the operator shares it).
    pub fn client(&self) -> kube::Client {
        self.inner.client.clone()
    }

    /// The settings in force.
    pub fn settings(&self) -> &ProvisionerSettings {
        &self.inner.settings
    }

    /// The background worker (to wake it, or shut it down).
    pub fn orchestrator(&self) -> &Orchestrator {
        &self.inner.orchestrator
    }

    /// Changes as this process makes them (a wake-up signal; the durable, ordered feed
    /// across replicas is [`Provisioner::changes`]).
    pub fn local_changes(&self) -> tokio::sync::broadcast::Receiver<StoreChange> {
        self.inner.orchestrator.subscribe()
    }

    /// Runs `op` on a task of its own, so that once it has written, its audit event and
    /// wake-up happen even if the caller's future is dropped.
    async fn detached<T, F, Fut>(&self, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(Arc<Inner>) -> Fut,
        Fut: std::future::Future<Output = Result<T>> + Send + 'static,
    {
        match tokio::spawn(op(self.inner.clone())).await {
            Ok(result) => result,
            Err(e) => Err(Error::internal(format!("a provisioner task failed: {e}"))),
        }
    }
}

impl Inner {
    fn begin_shutdown(&self) {
        self.orchestrator.begin_shutdown();
        self.stop.cancel();
    }

    async fn shutdown(&self) {
        self.begin_shutdown();
        self.orchestrator.shutdown().await;
        self.runtime.stop_watches();
    }

    /// The store as handed out: `chart.outdated` says whether its engine's chart is
    /// another version than the one it runs.
    fn annotated(&self, mut store: Store) -> Store {
        if let Some(chart) = store.chart.as_mut() {
            chart.outdated = self
                .engines
                .get(&store.engine)
                .ok()
                .and_then(|engine| engine.chart_version())
                .is_some_and(|bundled| bundled.version != chart.version);
        }
        store
    }

    async fn visible(&self, caller: &Caller, name: &str) -> Result<Store> {
        let name = StoreName::new(name).map_err(|_| Error::store_not_found(name))?;
        let store = self.state.get(&name).await?;
        if caller.can_see(&store) {
            Ok(store)
        } else {
            Err(Error::store_not_found(name.as_str()))
        }
    }

    async fn record(&self, event: AuditEvent) {
        if let Err(e) = self.audit.record(&event).await {
            tracing::error!(action = %event.action, error = %e, "could not record audit event");
        }
    }

    fn spec(&self, caller: &Caller, request: &CreateStore) -> Result<StoreSpec> {
        let name = StoreName::new(request.name.clone())?;
        let tenant = match &request.tenant {
            None => caller.tenant.clone(),
            Some(t) => {
                let t = TenantId::new(t.clone())?;
                if t != caller.tenant && caller.role != Role::Admin {
                    return Err(Error::Forbidden {
                        message: "a tenant key may only create stores for its own tenant".into(),
                    });
                }
                t
            }
        };
        let engine = match &request.engine {
            None => EngineId::default(),
            Some(e) => EngineId::new(e.clone())?,
        };
        self.engines.get(&engine)?;
        let plan = match &request.plan {
            None => Plan::default(),
            Some(p) => p.parse::<Plan>()?,
        };
        Ok(StoreSpec::new(name, tenant).engine(engine).plan(plan))
    }

    /// Read-modify-write of a store's record, retried on version conflicts; the
    /// idempotency key (if any) is completed with the written record, in the same
    /// transaction. With `opts.if_version`, a record at another version is
    /// `precondition_failed` (also when a concurrent write moved it on). Returns the store
    /// and whether it changed.
    async fn transition<F>(
        &self,
        caller: &Caller,
        name: &str,
        opts: &RequestOptions,
        idem: Option<&Idempotent>,
        mut change: F,
    ) -> Result<(Store, bool)>
    where
        F: FnMut(&mut Store) -> Result<bool> + Send,
    {
        for _ in 0..10 {
            let mut store = self.visible(caller, name).await?;
            check_version(&store, opts)?;
            if !change(&mut store)? {
                if let Some(idem) = idem {
                    idem.complete(&*self.state, &Replay::Stored(Box::new(store.clone())))
                        .await;
                }
                return Ok((store, false));
            }
            store.updated_at = crate::store::now();
            let mut written = store.clone();
            written.version += 1;
            let completion = idem.map(|i| i.completion(&written));
            match self
                .state
                .update_with(&store, completion.transpose()?.as_ref())
                .await
            {
                Ok(saved) => return Ok((saved, true)),
                Err(e) if e.kind() == ErrorKind::Conflict => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::conflict(format!(
            "store {name} kept changing; try again"
        )))
    }

    async fn create(
        self: Arc<Self>,
        caller: Caller,
        request: CreateStore,
        opts: RequestOptions,
    ) -> Result<Store> {
        let spec = match self.spec(&caller, &request) {
            Ok(spec) => spec,
            Err(e) => {
                let mut event = caller
                    .event("store.create", Outcome::Denied)
                    .tenant(caller.tenant.as_str())
                    .detail(e.tenant_message());
                if let Ok(name) = StoreName::new(request.name.clone()) {
                    event = event.store(name.as_str());
                }
                self.record(event).await;
                return Err(e);
            }
        };
        let idem = Idempotent::begin(
            &*self.state,
            &caller,
            opts.idempotency_key.as_deref(),
            "create",
            &serde_json::to_string(&request).unwrap_or_default(),
        )
        .await?;
        let idem = match idem {
            super::idempotency::Begun::Replay(outcome) => return outcome.into_result(),
            super::idempotency::Begun::Owned(idem) => idem,
        };
        let namespace = self.guardrails.namespace_for(&spec.name);
        let mut store = Store::new(spec, namespace);
        store.managed_by.clone_from(&opts.managed_by);
        let completion = idem
            .as_ref()
            .map(|i| i.completion(&store_as_inserted(&store)));
        let event = caller
            .event("store.create", Outcome::Success)
            .tenant(store.tenant.as_str())
            .store(store.name.as_str());
        let created = event.clone().detail(format!(
            "{} store, {} plan",
            store.engine.as_str(),
            store.plan
        ));
        let inserted = self
            .state
            .insert(
                &store,
                &InsertOptions {
                    limits: self.settings.limits,
                    idempotency: completion.transpose()?,
                    // With the state store's own audit table, the event is part of the
                    // insert: a store is never seen without the event that created it.
                    audit: self.audit_in_state.then(|| created.clone()),
                },
            )
            .await;
        match inserted {
            Ok(store) => {
                if !self.audit_in_state {
                    self.record(created).await;
                }
                self.orchestrator
                    .publish(StoreChange::Updated(store.clone()));
                self.orchestrator.wake();
                Ok(store)
            }
            Err(e) => {
                if let Some(idem) = &idem {
                    idem.finish_with_error(&*self.state, &e).await;
                }
                let mut event = event.detail(e.tenant_message());
                event.outcome = if e.is_retryable() && e.kind() != ErrorKind::RateLimited {
                    Outcome::Failure
                } else {
                    Outcome::Denied
                };
                self.record(event).await;
                Err(e)
            }
        }
    }

    async fn delete(
        self: Arc<Self>,
        caller: Caller,
        name: String,
        opts: RequestOptions,
    ) -> Result<Store> {
        let idem = match Idempotent::begin(
            &*self.state,
            &caller,
            opts.idempotency_key.as_deref(),
            "delete",
            &name,
        )
        .await?
        {
            super::idempotency::Begun::Replay(outcome) => return outcome.into_result(),
            super::idempotency::Begun::Owned(idem) => idem,
        };
        let result = self
            .transition(&caller, &name, &opts, idem.as_ref(), |store| {
                check_manager(store, &opts)?;
                if store.status == Status::Deleting {
                    return Ok(false);
                }
                store.status = Status::Deleting;
                store.message = "deletion requested".to_owned();
                Ok(true)
            })
            .await;
        let (store, changed) = match result {
            Ok(done) => done,
            Err(e) => {
                if let Some(idem) = &idem {
                    idem.finish_with_error(&*self.state, &e).await;
                }
                return Err(e);
            }
        };
        if changed {
            self.record(
                caller
                    .event("store.delete", Outcome::Success)
                    .tenant(store.tenant.as_str())
                    .store(store.name.as_str()),
            )
            .await;
            self.orchestrator
                .publish(StoreChange::Updated(store.clone()));
            self.orchestrator.interrupt(&store.name);
            self.orchestrator.wake();
        }
        Ok(store)
    }

    async fn update(
        self: Arc<Self>,
        caller: Caller,
        name: String,
        change: UpdateStore,
        opts: RequestOptions,
    ) -> Result<Store> {
        let plan: Plan = match change.plan.as_deref() {
            None => {
                return Err(Error::InvalidSpec {
                    field: "plan",
                    message: "nothing to change: give the new plan (small, medium or large)"
                        .to_owned(),
                });
            }
            Some(p) => p.parse()?,
        };
        let idem = match Idempotent::begin(
            &*self.state,
            &caller,
            opts.idempotency_key.as_deref(),
            "update",
            &format!("{name} plan={plan}"),
        )
        .await?
        {
            super::idempotency::Begun::Replay(outcome) => return outcome.into_result(),
            super::idempotency::Begun::Owned(idem) => idem,
        };
        let result = self
            .update_plan(&caller, &name, plan, &opts, idem.as_ref())
            .await;
        match result {
            Ok((store, from)) => {
                if let Some(from) = from {
                    self.record(
                        caller
                            .event("store.update", Outcome::Success)
                            .tenant(store.tenant.as_str())
                            .store(store.name.as_str())
                            .detail(format!("plan {from} → {plan}")),
                    )
                    .await;
                    self.orchestrator
                        .publish(StoreChange::Updated(store.clone()));
                    self.orchestrator.wake();
                }
                Ok(store)
            }
            Err(e) => {
                if let Some(idem) = &idem {
                    idem.finish_with_error(&*self.state, &e).await;
                }
                if let Ok(store) = self.visible(&caller, &name).await {
                    let event = caller
                        .event("store.update", Outcome::Failure)
                        .tenant(store.tenant.as_str())
                        .store(store.name.as_str())
                        .detail(format!(
                            "plan {} → {plan}: {}",
                            store.plan,
                            e.tenant_message()
                        ));
                    self.record(event).await;
                }
                Err(e)
            }
        }
    }

    /// The checks and the transition of [`Provisioner::update`]: the store and the plan
    /// it had when the change was recorded (`None`: nothing to change).
    async fn update_plan(
        &self,
        caller: &Caller,
        name: &str,
        plan: Plan,
        opts: &RequestOptions,
        idem: Option<&Idempotent>,
    ) -> Result<(Store, Option<Plan>)> {
        let store = self.visible(caller, name).await?;
        check_version(&store, opts)?;
        let check = |store: &Store| -> Result<bool> {
            check_manager(store, opts)?;
            if store.plan == plan {
                return Ok(false);
            }
            if !matches!(store.status, Status::Ready | Status::Degraded) {
                return Err(Error::conflict(format!(
                    "store {} is {}; its plan can be changed once it is Ready",
                    store.name, store.status
                )));
            }
            Ok(true)
        };
        if !check(&store)? {
            if let Some(idem) = idem {
                idem.complete(&*self.state, &Replay::Stored(Box::new(store.clone())))
                    .await;
            }
            return Ok((store, None));
        }
        let size = self.settings.plans.size(plan);
        if size_rank(plan) < size_rank(store.plan) {
            let over = self.runtime.usage(&store).await?.exceeding(size)?;
            if !over.is_empty() {
                return Err(Error::PlanTooSmall {
                    name: store.name.to_string(),
                    plan: plan.to_string(),
                    over,
                });
            }
        }
        let mut from = store.plan;
        let (store, changed) = self
            .transition(caller, name, opts, idem, |store| {
                if !check(store)? {
                    return Ok(false);
                }
                from = store.plan;
                store.plan = plan;
                store.status = Status::Updating;
                store.step = Step::Guardrails;
                store.message = format!("plan change {from} → {plan}: starting");
                Ok(true)
            })
            .await?;
        Ok((store, changed.then_some(from)))
    }

    /// [`Provisioner::upgrade`].
    async fn upgrade(
        self: Arc<Self>,
        caller: Caller,
        name: String,
        opts: RequestOptions,
    ) -> Result<Store> {
        let idem = match Idempotent::begin(
            &*self.state,
            &caller,
            opts.idempotency_key.as_deref(),
            "upgrade",
            &name,
        )
        .await?
        {
            super::idempotency::Begun::Replay(outcome) => return outcome.into_result(),
            super::idempotency::Begun::Owned(idem) => idem,
        };
        let result = self
            .start_upgrade(&caller, &name, &opts, idem.as_ref())
            .await;
        match result {
            Ok((store, Some((from, to)))) => {
                self.record(
                    caller
                        .event("store.upgrade", Outcome::Success)
                        .tenant(store.tenant.as_str())
                        .store(store.name.as_str())
                        .detail(format!("chart {from} → {to}: started")),
                )
                .await;
                self.orchestrator
                    .publish(StoreChange::Updated(store.clone()));
                self.orchestrator.wake();
                Ok(store)
            }
            Ok((store, None)) => Ok(store),
            Err(e) => {
                if let Some(idem) = &idem {
                    idem.finish_with_error(&*self.state, &e).await;
                }
                if let Ok(store) = self.visible(&caller, &name).await {
                    let event = caller
                        .event("store.upgrade", Outcome::Failure)
                        .tenant(store.tenant.as_str())
                        .store(store.name.as_str())
                        .detail(e.tenant_message());
                    self.record(event).await;
                }
                Err(e)
            }
        }
    }

    /// The checks and the transition of [`Provisioner::upgrade`]: the store, and the chart
    /// versions it moves from and to (`None`: already on the bundled chart).
    async fn start_upgrade(
        &self,
        caller: &Caller,
        name: &str,
        opts: &RequestOptions,
        idem: Option<&Idempotent>,
    ) -> Result<(Store, Option<(String, String)>)> {
        let store = self.visible(caller, name).await?;
        check_version(&store, opts)?;
        let bundled = self.engines.get(&store.engine)?.chart_version();
        let target = |store: &Store| -> Option<String> {
            let bundled = bundled.as_ref()?;
            let current = store.chart.as_ref()?;
            (current.version != bundled.version).then(|| bundled.version.clone())
        };
        if target(&store).is_none() || store.status == Status::Updating {
            if let Some(idem) = idem {
                idem.complete(&*self.state, &Replay::Stored(Box::new(store.clone())))
                    .await;
            }
            return Ok((store, None));
        }
        // Where a failed upgrade comes back to: the revision deployed now.
        let deployed = self.runtime.deployed_revision(&store).await?;
        let mut moved = None;
        let (store, changed) = self
            .transition(caller, name, opts, idem, |store| {
                check_manager(store, opts)?;
                let Some(to) = target(store) else {
                    return Ok(false);
                };
                if !matches!(store.status, Status::Ready | Status::Degraded) {
                    return Err(Error::conflict(format!(
                        "store {} is {}; it can be upgraded once it is Ready",
                        store.name, store.status
                    )));
                }
                let from = store
                    .chart
                    .as_ref()
                    .map(|c| c.version.clone())
                    .unwrap_or_default();
                store.status = Status::Updating;
                store.step = Step::Release;
                store.rollback_to = deployed;
                store.message = format!("upgrade to chart {to}: starting");
                moved = Some((from, to));
                Ok(true)
            })
            .await?;
        Ok((store, if changed { moved } else { None }))
    }

    /// [`Provisioner::suspend`] (`suspended` true) and [`Provisioner::resume`] (false).
    async fn set_suspended(
        self: Arc<Self>,
        caller: Caller,
        name: String,
        suspended: bool,
        opts: RequestOptions,
    ) -> Result<Store> {
        let (operation, action, verb) = if suspended {
            ("suspend", "store.suspend", "suspended")
        } else {
            ("resume", "store.resume", "resumed")
        };
        let idem = match Idempotent::begin(
            &*self.state,
            &caller,
            opts.idempotency_key.as_deref(),
            operation,
            &name,
        )
        .await?
        {
            super::idempotency::Begun::Replay(outcome) => return outcome.into_result(),
            super::idempotency::Begun::Owned(idem) => idem,
        };
        let result = self
            .transition(&caller, &name, &opts, idem.as_ref(), |store| {
                check_manager(store, &opts)?;
                let settled = matches!(
                    store.status,
                    Status::Ready | Status::Degraded | Status::Updating
                );
                if store.suspended == suspended && settled {
                    return Ok(false);
                }
                // A store that was Ready and failed during a change may be suspended or
                // resumed: the release runs again with the wanted state.
                let was_ready_failed = store.status == Status::Failed && store.ready_at.is_some();
                let serving = matches!(store.status, Status::Ready | Status::Degraded);
                if !serving && !was_ready_failed {
                    return Err(Error::conflict(format!(
                        "store {} is {}{}; it can be {verb} once it is Ready",
                        store.name,
                        store.status,
                        if store.status == Status::Updating {
                            " (a change is in progress)"
                        } else {
                            ""
                        }
                    )));
                }
                store.suspended = suspended;
                store.status = Status::Updating;
                store.step = Step::Release;
                store.message = if suspended {
                    "suspend requested: stopping the workloads".to_owned()
                } else {
                    "resume requested: starting the workloads".to_owned()
                };
                Ok(true)
            })
            .await;
        match result {
            Ok((store, changed)) => {
                if changed {
                    self.record(
                        caller
                            .event(action, Outcome::Success)
                            .tenant(store.tenant.as_str())
                            .store(store.name.as_str())
                            .detail(store.message.clone()),
                    )
                    .await;
                    self.orchestrator
                        .publish(StoreChange::Updated(store.clone()));
                    self.orchestrator.wake();
                }
                Ok(store)
            }
            Err(e) => {
                if let Some(idem) = &idem {
                    idem.finish_with_error(&*self.state, &e).await;
                }
                if let Ok(store) = self.visible(&caller, &name).await {
                    let event = caller
                        .event(action, Outcome::Failure)
                        .tenant(store.tenant.as_str())
                        .store(store.name.as_str())
                        .detail(e.tenant_message());
                    self.record(event).await;
                }
                Err(e)
            }
        }
    }

    async fn retry(
        self: Arc<Self>,
        caller: Caller,
        name: String,
        opts: RequestOptions,
    ) -> Result<Store> {
        let idem = match Idempotent::begin(
            &*self.state,
            &caller,
            opts.idempotency_key.as_deref(),
            "retry",
            &name,
        )
        .await?
        {
            super::idempotency::Begun::Replay(outcome) => return outcome.into_result(),
            super::idempotency::Begun::Owned(idem) => idem,
        };
        let result = self
            .transition(&caller, &name, &opts, idem.as_ref(), |store| {
                if store.status != Status::Failed {
                    return Err(Error::conflict(format!(
                        "store {} is {}, not Failed; only a failed store can be retried",
                        store.name, store.status
                    )));
                }
                // A store that was Ready before failing failed during a change (a plan
                // change): it resumes as one, so the quota settles to the plan at the end.
                store.status = if store.ready_at.is_some() {
                    Status::Updating
                } else {
                    Status::Provisioning
                };
                store.attempts += 1;
                // Readiness of the same revision cannot change (a failed Job stays
                // failed): run the release again, which makes a new revision per attempt.
                if store.step == Step::Readiness {
                    store.step = Step::Release;
                }
                store.message = format!("retry requested: resuming at {}", store.step.as_str());
                Ok(true)
            })
            .await;
        let store = match result {
            Ok((store, _)) => store,
            Err(e) => {
                if let Some(idem) = &idem {
                    idem.finish_with_error(&*self.state, &e).await;
                }
                return Err(e);
            }
        };
        self.record(
            caller
                .event("store.retry", Outcome::Success)
                .tenant(store.tenant.as_str())
                .store(store.name.as_str())
                .detail(format!(
                    "attempt {} from step {}",
                    store.attempts,
                    store.step.as_str()
                )),
        )
        .await;
        self.orchestrator
            .publish(StoreChange::Updated(store.clone()));
        self.orchestrator.wake();
        Ok(store)
    }
}

/// A store a `Store` object manages may be changed only on behalf of that object.
fn check_manager(store: &Store, opts: &RequestOptions) -> Result<()> {
    match &store.managed_by {
        Some(manager) if opts.managed_by.as_ref() != Some(manager) => {
            Err(Error::ManagedExternally {
                name: store.name.to_string(),
                manager: manager.clone(),
            })
        }
        _ => Ok(()),
    }
}

/// `opts.if_version`'s precondition on `store`.
fn check_version(store: &Store, opts: &RequestOptions) -> Result<()> {
    match opts.if_version {
        Some(expected) if expected != store.version => Err(Error::VersionMismatch {
            name: store.name.to_string(),
            expected,
            current: store.version,
        }),
        _ => Ok(()),
    }
}

/// Plans ordered by size: a change to a lower rank is a downsize.
fn size_rank(plan: Plan) -> usize {
    Plan::ALL.iter().position(|p| *p == plan).unwrap_or(0)
}

/// The record as the state store will return it from the insert (version 1), so the
/// idempotent response stored with the insert is exactly what the caller gets.
fn store_as_inserted(store: &Store) -> Store {
    let mut s = store.clone();
    s.version = 1;
    s.created_at = crate::store::truncate_micros(s.created_at);
    s.updated_at = crate::store::truncate_micros(s.updated_at);
    s
}

/// Purges expired idempotency keys and changes older than the retention, hourly.
async fn housekeeping(inner: Arc<Inner>, retention: Duration) {
    loop {
        if let Err(e) = inner.state.idempotency_purge().await {
            tracing::debug!(error = %e, "could not purge idempotency keys");
        }
        if let Ok(age) = chrono::Duration::from_std(retention) {
            let before = crate::store::now() - age;
            if let Err(e) = inner.state.purge_changes(before).await {
                tracing::debug!(error = %e, "could not purge old changes");
            }
        }
        tokio::select! {
            _ = inner.stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
        }
    }
}

#[async_trait]
impl Provisioner for KubeProvisioner {
    async fn create(
        &self,
        caller: &Caller,
        request: CreateStore,
        opts: RequestOptions,
    ) -> Result<Store> {
        let caller = caller.clone();
        self.detached(move |inner| inner.create(caller, request, opts))
            .await
            .map(|store| self.inner.annotated(store))
    }

    async fn get(&self, caller: &Caller, name: &str) -> Result<Store> {
        let store = self.inner.visible(caller, name).await?;
        Ok(self.inner.annotated(store))
    }

    async fn list(&self, caller: &Caller, mut query: ListQuery) -> Result<Page<Store>> {
        if caller.role == Role::Tenant {
            query.tenant = Some(caller.tenant.clone());
        }
        let mut page = self.inner.state.list(&query).await?;
        page.items = page
            .items
            .into_iter()
            .map(|store| self.inner.annotated(store))
            .collect();
        Ok(page)
    }

    async fn delete(&self, caller: &Caller, name: &str, opts: RequestOptions) -> Result<Store> {
        let (caller, name) = (caller.clone(), name.to_owned());
        self.detached(move |inner| inner.delete(caller, name, opts))
            .await
            .map(|store| self.inner.annotated(store))
    }

    async fn update(
        &self,
        caller: &Caller,
        name: &str,
        change: UpdateStore,
        opts: RequestOptions,
    ) -> Result<Store> {
        let (caller, name) = (caller.clone(), name.to_owned());
        self.detached(move |inner| inner.update(caller, name, change, opts))
            .await
            .map(|store| self.inner.annotated(store))
    }

    async fn upgrade(&self, caller: &Caller, name: &str, opts: RequestOptions) -> Result<Store> {
        let (caller, name) = (caller.clone(), name.to_owned());
        self.detached(move |inner| inner.upgrade(caller, name, opts))
            .await
            .map(|store| self.inner.annotated(store))
    }

    async fn suspend(&self, caller: &Caller, name: &str, opts: RequestOptions) -> Result<Store> {
        let (caller, name) = (caller.clone(), name.to_owned());
        self.detached(move |inner| inner.set_suspended(caller, name, true, opts))
            .await
            .map(|store| self.inner.annotated(store))
    }

    async fn resume(&self, caller: &Caller, name: &str, opts: RequestOptions) -> Result<Store> {
        let (caller, name) = (caller.clone(), name.to_owned());
        self.detached(move |inner| inner.set_suspended(caller, name, false, opts))
            .await
            .map(|store| self.inner.annotated(store))
    }

    async fn retry(&self, caller: &Caller, name: &str, opts: RequestOptions) -> Result<Store> {
        let (caller, name) = (caller.clone(), name.to_owned());
        self.detached(move |inner| inner.retry(caller, name, opts))
            .await
            .map(|store| self.inner.annotated(store))
    }

    async fn credentials(&self, caller: &Caller, name: &str) -> Result<StoreCredentials> {
        let inner = &self.inner;
        let store = inner.visible(caller, name).await?;
        let event = caller
            .event("store.credentials.read", Outcome::Success)
            .tenant(store.tenant.as_str())
            .store(store.name.as_str());
        match inner.runtime.admin_credentials(&store).await {
            Ok(admin) => {
                inner.record(event).await;
                Ok(StoreCredentials {
                    admin_url: store.urls.admin.clone(),
                    username: admin.user,
                    password: admin.password,
                })
            }
            Err(e) => {
                tracing::warn!(store = %store.name, error = %e, "could not read the store's credentials");
                let mut event = event.detail(e.tenant_message());
                event.outcome = Outcome::Failure;
                inner.record(event).await;
                Err(e)
            }
        }
    }

    async fn usage(&self, caller: &Caller, name: &str) -> Result<StoreUsage> {
        let inner = &self.inner;
        let store = inner.visible(caller, name).await?;
        inner.runtime.usage(&store).await
    }

    async fn revisions(&self, caller: &Caller, name: &str) -> Result<Vec<StoreRevision>> {
        let inner = &self.inner;
        let store = inner.visible(caller, name).await?;
        inner.runtime.revisions(&store).await
    }

    fn plans(&self) -> Vec<PlanEntry> {
        self.inner.settings.plans.entries()
    }

    async fn verify(&self, caller: &Caller, name: &str) -> Result<crate::verify::VerifyReport> {
        let inner = &self.inner;
        let store = inner.visible(caller, name).await?;
        if store.status != Status::Ready {
            return Err(Error::conflict(format!(
                "store {} is {}, not Ready; only a Ready store can be verified",
                store.name, store.status
            )));
        }
        if store.suspended {
            return Err(Error::conflict(format!(
                "store {} is suspended; resume it to verify it",
                store.name
            )));
        }
        let target = inner.settings.verify_target(&store)?;
        let report =
            crate::verify::verify_store(&target, &crate::verify::VerifyOptions::default()).await;
        let total: u64 = report.steps.iter().map(|s| s.ms).sum();
        let detail = match report.steps.iter().find(|s| !s.ok) {
            None => format!(
                "order {} placed and read back in {total} ms",
                report
                    .order_id
                    .map_or_else(|| "?".to_owned(), |id| id.to_string())
            ),
            Some(step) => format!(
                "failed at {}{} after {total} ms",
                step.name,
                step.status
                    .map(|s| format!(" (HTTP {s})"))
                    .unwrap_or_default()
            ),
        };
        let outcome = if report.ok {
            Outcome::Success
        } else {
            Outcome::Failure
        };
        let event = caller
            .event("store.verify", outcome)
            .tenant(store.tenant.as_str())
            .store(store.name.as_str())
            .detail(detail);
        inner.record(event).await;
        Ok(report)
    }

    async fn events(
        &self,
        caller: &Caller,
        name: &str,
        mut query: AuditQuery,
    ) -> Result<Page<AuditEvent>> {
        let exists = match self.inner.visible(caller, name).await {
            Ok(_) => true,
            Err(e) if e.kind() == ErrorKind::NotFound => false,
            Err(e) => return Err(e),
        };
        query.store = Some(name.to_owned());
        if caller.role == Role::Tenant {
            query.tenant = Some(caller.tenant.to_string());
        }
        let page = self.inner.audit.query(&query).await?;
        if !exists && page.items.is_empty() && query.cursor.is_none() {
            return Err(Error::store_not_found(name));
        }
        Ok(page)
    }

    async fn audit(&self, caller: &Caller, mut query: AuditQuery) -> Result<Page<AuditEvent>> {
        if caller.role == Role::Tenant {
            query.tenant = Some(caller.tenant.to_string());
        }
        self.inner.audit.query(&query).await
    }

    async fn receive_webhook(
        &self,
        name: &str,
        topic: &str,
        body: &[u8],
        signature: &str,
    ) -> Result<()> {
        let topic = super::webhook::check_topic(topic)?;
        let name = StoreName::new(name).map_err(|_| Error::store_not_found(name))?;
        let store = self.inner.state.get(&name).await?;
        let secret = self.inner.runtime.webhook_secret(&store).await?;
        let verdict = match &secret {
            Some(secret) => super::webhook::verify(secret, body, signature),
            None => Err(Error::Unauthorized {
                message: "this store does not send webhooks".to_owned(),
            }),
        };
        if let Err(e) = verdict {
            tracing::warn!(store = %store.name, topic, "webhook refused: bad signature");
            return Err(e);
        }
        let event = AuditEvent::new("webhook", format!("woocommerce.{topic}"), Outcome::Success)
            .tenant(store.tenant.as_str())
            .store(store.name.as_str())
            .detail(format!("{} bytes delivered", body.len()));
        self.inner.audit.record(&event).await
    }

    fn changes(&self, caller: &Caller, after: Option<u64>) -> ChangeStream {
        use futures::StreamExt as _;
        let tenant = (caller.role == Role::Tenant).then(|| caller.tenant.clone());
        let inner = self.inner.clone();
        self.inner
            .feed
            .follow(
                self.inner.state.clone(),
                tenant,
                after,
                self.inner.stop.clone(),
            )
            .map(move |change| {
                change.map(|mut change| {
                    change.store = inner.annotated(change.store);
                    change
                })
            })
            .boxed()
    }

    async fn check_ready(&self) -> Result<()> {
        self.inner.state.ping().await?;
        self.inner
            .client
            .apiserver_version()
            .await
            .map_err(|e| Error::Unavailable {
                message: format!("the Kubernetes API does not answer: {}", Error::from(e)),
            })?;
        Ok(())
    }

    async fn shutdown(&self) {
        self.inner.shutdown().await;
    }
}
