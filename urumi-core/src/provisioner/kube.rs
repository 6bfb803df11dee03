//! [`KubeProvisioner`]: the [`Provisioner`] over a Kubernetes cluster, built by
//! [`KubeProvisionerBuilder`] from a `kube::Client` and the three ports.
//!
//! ```text
//!  KubeProvisioner::builder(client, state)
//!      .helm(..) .audit(..) .settings(..) .build()?
//!        └─▶ ReadinessWatcher (3 cluster-wide watches) ─▶ KubeRuntime ─▶ Orchestrator::start
//! ```

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::broadcast;

use super::{
    Caller, CreateOptions, CreateStore, Provisioner, ProvisionerSettings, Role, StoreCredentials,
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
use crate::store::{EngineId, Plan, Status, Step, Store, StoreName, StoreSpec, TenantId};

/// Builds a [`KubeProvisioner`].
pub struct KubeProvisionerBuilder {
    client: kube::Client,
    state: Arc<dyn StateStore>,
    helm: Option<Arc<dyn HelmDriver>>,
    audit: Option<Arc<dyn AuditSink>>,
    engines: Engines,
    settings: ProvisionerSettings,
}

impl KubeProvisionerBuilder {
    /// The Helm driver; [`HelmCli`] with `helm` from `PATH` by default.
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

    /// Starts the readiness watches and the background worker (which resumes every
    /// store not at rest). Must run inside a Tokio runtime.
    /// Errors: `invalid_config` for bad settings.
    pub fn build(self) -> Result<KubeProvisioner> {
        self.settings.validate()?;
        let helm = self.helm.unwrap_or_else(|| Arc::new(HelmCli::new()));
        let audit = self
            .audit
            .unwrap_or_else(|| Arc::new(StateSink::new(self.state.clone())));
        let guardrails_config = self.settings.guardrails();
        let readiness = ReadinessWatcher::start(&self.client, STORE_LABEL);
        let runtime = Arc::new(KubeRuntime::new(
            Guardrails::new(self.client.clone(), guardrails_config.clone()),
            self.engines.clone(),
            helm,
            readiness,
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
        Ok(KubeProvisioner {
            client: self.client,
            state: self.state,
            audit,
            engines: self.engines,
            runtime,
            orchestrator,
            guardrails: guardrails_config,
            settings: self.settings,
        })
    }
}

/// Provisions stores on a Kubernetes cluster. See [`Provisioner`].
pub struct KubeProvisioner {
    client: kube::Client,
    state: Arc<dyn StateStore>,
    audit: Arc<dyn AuditSink>,
    engines: Engines,
    runtime: Arc<KubeRuntime>,
    orchestrator: Orchestrator,
    guardrails: GuardrailsConfig,
    settings: ProvisionerSettings,
}

impl std::fmt::Debug for KubeProvisioner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeProvisioner")
            .field("state", &self.state)
            .field("orchestrator", &self.orchestrator)
            .field("settings", &self.settings)
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
        }
    }

    /// The settings in force.
    pub fn settings(&self) -> &ProvisionerSettings {
        &self.settings
    }

    /// The background worker (to wake it, or shut it down).
    pub fn orchestrator(&self) -> &Orchestrator {
        &self.orchestrator
    }

    /// Checks that the state store and the Kubernetes API answer.
    /// Errors: `unavailable` naming which does not.
    pub async fn check_ready(&self) -> Result<()> {
        self.state.ping().await?;
        self.client
            .apiserver_version()
            .await
            .map_err(|e| Error::Unavailable {
                message: format!("the Kubernetes API does not answer: {}", Error::from(e)),
            })?;
        Ok(())
    }

    /// Stops the background worker at a safe point; unfinished stores resume on the
    /// next start.
    pub async fn shutdown(&self) {
        self.orchestrator.shutdown().await;
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

    /// Read-modify-write of a store's record, retried on version conflicts.
    async fn transition<F>(
        &self,
        caller: &Caller,
        name: &str,
        mut change: F,
    ) -> Result<(Store, bool)>
    where
        F: FnMut(&mut Store) -> Result<bool> + Send,
    {
        for _ in 0..10 {
            let mut store = self.visible(caller, name).await?;
            if !change(&mut store)? {
                return Ok((store, false));
            }
            store.updated_at = crate::store::now();
            match self.state.update(&store).await {
                Ok(saved) => return Ok((saved, true)),
                Err(e) if e.kind() == ErrorKind::Conflict => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::conflict(format!(
            "store {name} kept changing; try again"
        )))
    }
}

#[async_trait]
impl Provisioner for KubeProvisioner {
    async fn create(
        &self,
        caller: &Caller,
        request: CreateStore,
        opts: CreateOptions,
    ) -> Result<Store> {
        let spec = match self.spec(caller, &request) {
            Ok(spec) => spec,
            Err(e) => {
                let mut event = caller
                    .event("store.create", Outcome::Denied)
                    .tenant(caller.tenant.as_str())
                    .detail(e.to_string());
                if let Ok(name) = StoreName::new(request.name.clone()) {
                    event = event.store(name.as_str());
                }
                self.record(event).await;
                return Err(e);
            }
        };
        let namespace = self.guardrails.namespace_for(&spec.name);
        let store = Store::new(spec, namespace);
        let inserted = self
            .state
            .insert(
                &store,
                &InsertOptions {
                    limits: self.settings.limits,
                    idempotency: opts.idempotency,
                },
            )
            .await;
        let event = caller
            .event("store.create", Outcome::Success)
            .tenant(store.tenant.as_str())
            .store(store.name.as_str());
        match inserted {
            Ok(store) => {
                self.record(event.detail(format!(
                    "{} store, {} plan",
                    store.engine.as_str(),
                    store.plan
                )))
                .await;
                self.orchestrator
                    .publish(StoreChange::Updated(store.clone()));
                self.orchestrator.wake();
                Ok(store)
            }
            Err(e) => {
                let mut event = event.detail(e.to_string());
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

    async fn get(&self, caller: &Caller, name: &str) -> Result<Store> {
        self.visible(caller, name).await
    }

    async fn list(&self, caller: &Caller, mut query: ListQuery) -> Result<Page<Store>> {
        if caller.role == Role::Tenant {
            query.tenant = Some(caller.tenant.clone());
        }
        self.state.list(&query).await
    }

    async fn delete(&self, caller: &Caller, name: &str) -> Result<Store> {
        let (store, changed) = self
            .transition(caller, name, |store| {
                if store.status == Status::Deleting {
                    return Ok(false);
                }
                store.status = Status::Deleting;
                store.message = "deletion requested".to_owned();
                Ok(true)
            })
            .await?;
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

    async fn retry(&self, caller: &Caller, name: &str) -> Result<Store> {
        let (store, _) = self
            .transition(caller, name, |store| {
                if store.status != Status::Failed {
                    return Err(Error::conflict(format!(
                        "store {} is {}, not Failed; only a failed store can be retried",
                        store.name, store.status
                    )));
                }
                store.status = Status::Provisioning;
                store.attempts += 1;
                // Readiness of the same revision cannot change (a failed Job stays
                // failed): run the release again, which makes a new revision per attempt.
                if store.step == Step::Readiness {
                    store.step = Step::Release;
                }
                store.message = format!("retry requested: resuming at {}", store.step.as_str());
                Ok(true)
            })
            .await?;
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

    async fn credentials(&self, caller: &Caller, name: &str) -> Result<StoreCredentials> {
        let store = self.visible(caller, name).await?;
        let event = caller
            .event("store.credentials.read", Outcome::Success)
            .tenant(store.tenant.as_str())
            .store(store.name.as_str());
        match self.runtime.admin_credentials(&store).await {
            Ok(admin) => {
                self.record(event).await;
                Ok(StoreCredentials {
                    admin_url: store.urls.admin.clone(),
                    username: admin.user,
                    password: admin.password.expose().to_owned(),
                })
            }
            Err(e) => {
                let mut event = event.detail(e.to_string());
                event.outcome = Outcome::Failure;
                self.record(event).await;
                Err(e)
            }
        }
    }

    async fn events(
        &self,
        caller: &Caller,
        name: &str,
        mut query: AuditQuery,
    ) -> Result<Page<AuditEvent>> {
        let exists = match self.visible(caller, name).await {
            Ok(_) => true,
            Err(e) if e.kind() == ErrorKind::NotFound => false,
            Err(e) => return Err(e),
        };
        query.store = Some(name.to_owned());
        if caller.role == Role::Tenant {
            query.tenant = Some(caller.tenant.to_string());
        }
        let page = self.audit.query(&query).await?;
        if !exists && page.items.is_empty() && query.cursor.is_none() {
            return Err(Error::store_not_found(name));
        }
        Ok(page)
    }

    async fn audit(&self, caller: &Caller, mut query: AuditQuery) -> Result<Page<AuditEvent>> {
        if caller.role == Role::Tenant {
            query.tenant = Some(caller.tenant.to_string());
        }
        self.audit.query(&query).await
    }

    async fn record_store_event(&self, name: &str, action: &str, detail: String) -> Result<()> {
        let name = StoreName::new(name).map_err(|_| Error::store_not_found(name))?;
        let store = self.state.get(&name).await?;
        let event = AuditEvent::new("webhook", action, Outcome::Success)
            .tenant(store.tenant.as_str())
            .store(store.name.as_str())
            .detail(detail);
        self.audit.record(&event).await
    }

    fn subscribe(&self) -> broadcast::Receiver<StoreChange> {
        self.orchestrator.subscribe()
    }
}
