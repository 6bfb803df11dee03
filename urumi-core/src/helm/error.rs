//! [`HelmError`]: what went wrong with a helm call, classified from helm's stderr, and
//! how it folds into [`crate::Error`].

use std::fmt;
use std::time::Duration;

use crate::error::{Error, HelmFailure};

/// What kind of failure a [`HelmError`] is. Callers match this, never the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HelmErrorKind {
    /// The chart or the values were refused: chart missing or invalid, values breaking
    /// the schema, a template that fails to render, an object the API server rejects.
    /// Permanent: the same call fails the same way.
    Rejected,
    /// Another helm operation holds the release ("another operation
    /// (install/upgrade/rollback) is in progress"). Retryable.
    InProgress,
    /// The API server could not be reached or answered with a transient error
    /// (connection refused, i/o timeout, etcd leader change, conflict). Retryable.
    Unavailable,
    /// The call outlived its deadline (helm was killed) or helm's own `--timeout`
    /// expired waiting for a hook. Retryable.
    Timeout,
    /// The release or revision does not exist (only where the method says so).
    NotFound,
    /// The `helm` binary could not be started (not found, not executable). Permanent
    /// until the configuration is fixed.
    Binary,
    /// helm succeeded but printed output this driver cannot read. Permanent.
    Output,
    /// helm failed for a reason none of the other kinds describes. Not retryable.
    Failed,
}

impl HelmErrorKind {
    /// Whether the same call may succeed later, unchanged.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            HelmErrorKind::InProgress | HelmErrorKind::Unavailable | HelmErrorKind::Timeout
        )
    }

    /// A stable lowercase name, e.g. `in_progress`.
    pub fn as_str(self) -> &'static str {
        match self {
            HelmErrorKind::Rejected => "rejected",
            HelmErrorKind::InProgress => "in_progress",
            HelmErrorKind::Unavailable => "unavailable",
            HelmErrorKind::Timeout => "timeout",
            HelmErrorKind::NotFound => "not_found",
            HelmErrorKind::Binary => "binary",
            HelmErrorKind::Output => "output",
            HelmErrorKind::Failed => "failed",
        }
    }
}

impl fmt::Display for HelmErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed helm call: its kind, the operation, the release, and a secret-free message
/// (helm's stderr tail, scrubbed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelmError {
    kind: HelmErrorKind,
    operation: &'static str,
    release: String,
    namespace: String,
    message: String,
    timeout: Option<Duration>,
}

impl HelmError {
    /// A new error. `message` must already be free of secrets.
    pub fn new(
        kind: HelmErrorKind,
        operation: &'static str,
        release: &str,
        namespace: &str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            operation,
            release: release.to_owned(),
            namespace: namespace.to_owned(),
            message: message.into(),
            timeout: None,
        }
    }

    /// A [`HelmErrorKind::Timeout`] for a helm process stopped after `after`.
    pub fn timeout(
        operation: &'static str,
        release: &str,
        namespace: &str,
        after: Duration,
    ) -> Self {
        let mut e = Self::new(
            HelmErrorKind::Timeout,
            operation,
            release,
            namespace,
            format!(
                "helm did not finish within {}s and was stopped",
                after.as_secs_f64()
            ),
        );
        e.timeout = Some(after);
        e
    }

    /// The kind of failure.
    pub fn kind(&self) -> HelmErrorKind {
        self.kind
    }

    /// Whether the same call may succeed later, unchanged.
    pub fn is_retryable(&self) -> bool {
        self.kind.is_retryable()
    }

    /// The helm operation, e.g. `upgrade`, `uninstall`, `history`.
    pub fn operation(&self) -> &'static str {
        self.operation
    }

    /// The release the call was about.
    pub fn release(&self) -> &str {
        &self.release
    }

    /// The namespace of the release.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// What went wrong, secret-free (for a timeout: how long we waited).
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for HelmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "helm {} of release {:?} in namespace {:?} failed ({}): {}",
            self.operation, self.release, self.namespace, self.kind, self.message
        )
    }
}

impl std::error::Error for HelmError {}

/// Folds a helm failure into the crate's error: a killed helm becomes
/// [`Error::Timeout`], a missing helm binary [`Error::InvalidConfig`], a missing
/// release or revision [`Error::NotFound`], everything else [`Error::Helm`] with
/// `retryable` from [`HelmError::is_retryable`] (so its kind is `unavailable` when
/// retryable and `internal` when permanent).
impl From<HelmError> for Error {
    fn from(e: HelmError) -> Self {
        match e.kind {
            HelmErrorKind::Timeout if e.timeout.is_some() => Error::Timeout {
                operation: format!("helm {} of release {:?}", e.operation, e.release),
                after: e.timeout.unwrap_or_default(),
            },
            HelmErrorKind::Binary => Error::InvalidConfig { message: e.message },
            HelmErrorKind::NotFound => Error::NotFound {
                what: format!(
                    "helm release {:?} in namespace {:?} ({})",
                    e.release, e.namespace, e.message
                ),
            },
            kind => Error::Helm(HelmFailure {
                operation: e.operation.to_owned(),
                message: format!(
                    "release {:?} in namespace {:?}: {}",
                    e.release, e.namespace, e.message
                ),
                retryable: kind.is_retryable(),
            }),
        }
    }
}

/// Classifies a failed helm run from its (already scrubbed) stderr.
pub(crate) fn classify(stderr: &str) -> HelmErrorKind {
    let s = stderr.to_ascii_lowercase();
    let has = |needles: &[&str]| needles.iter().any(|n| s.contains(n));
    if has(&["another operation (install/upgrade/rollback) is in progress"]) {
        return HelmErrorKind::InProgress;
    }
    if has(&[
        "release: not found",
        "has no deployed releases",
        "release has no ",
    ]) {
        return HelmErrorKind::NotFound;
    }
    if has(&[
        "timed out waiting for the condition",
        "context deadline exceeded",
    ]) {
        return HelmErrorKind::Timeout;
    }
    if has(&[
        "connection refused",
        "connection reset by peer",
        "i/o timeout",
        "tls handshake timeout",
        "no such host",
        "kubernetes cluster unreachable",
        "http2: client connection lost",
        "unexpected eof",
        "the server is currently unable to handle the request",
        "the server was unable to return a response in the time allotted",
        "etcdserver: request timed out",
        "etcdserver: leader changed",
        "the object has been modified",
        "too many requests",
        "because it is being terminated",
        "client rate limiter",
        "internal error occurred",
    ]) {
        return HelmErrorKind::Unavailable;
    }
    if has(&[
        "parse error",
        "template: ",
        "execution error at",
        "values don't meet the specifications of the schema",
        "error converting yaml to json",
        "unable to build kubernetes objects",
        "chart.yaml file is missing",
        "validation: chart.metadata",
        "path \"",
        "invalid chart",
        "error unpacking",
        "no chart name found",
        "rendered manifests contain a resource that already exists",
        "is invalid:",
        "forbidden",
        "exceeded quota",
        "admission webhook",
        "failed to create resource",
        "wrong type for value",
    ]) {
        return HelmErrorKind::Rejected;
    }
    HelmErrorKind::Failed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn classifies_helm_messages() {
        let cases: &[(&str, HelmErrorKind)] = &[
            (
                "Error: UPGRADE FAILED: another operation (install/upgrade/rollback) is in progress",
                HelmErrorKind::InProgress,
            ),
            (
                "Error: Kubernetes cluster unreachable: Get \"https://127.0.0.1:6443/version\": dial tcp 127.0.0.1:6443: connect: connection refused",
                HelmErrorKind::Unavailable,
            ),
            (
                "Error: INSTALLATION FAILED: Get \"https://10.0.0.1/api\": dial tcp: i/o timeout",
                HelmErrorKind::Unavailable,
            ),
            (
                "Error: INSTALLATION FAILED: failed pre-install: 1 error occurred:\n\t* timed out waiting for the condition",
                HelmErrorKind::Timeout,
            ),
            (
                "Error: INSTALLATION FAILED: execution error at (probe/templates/configmap.yaml:3:4): refusing to render",
                HelmErrorKind::Rejected,
            ),
            (
                "Error: INSTALLATION FAILED: parse error at (probe/templates/x.yaml:1): unexpected \"}\" in operand",
                HelmErrorKind::Rejected,
            ),
            (
                "Error: values don't meet the specifications of the schema(s) in the following chart(s):\nprobe:\n- replicas: Invalid type",
                HelmErrorKind::Rejected,
            ),
            ("Error: path \"/nope\" not found", HelmErrorKind::Rejected),
            (
                "Error: UPGRADE FAILED: cannot patch \"web\" with kind Deployment: Deployment.apps \"web\" is invalid: spec.replicas: Invalid value: -1",
                HelmErrorKind::Rejected,
            ),
            (
                "Error: INSTALLATION FAILED: pods \"x\" is forbidden: exceeded quota: store, requested: cpu=2",
                HelmErrorKind::Rejected,
            ),
            ("Error: release: not found", HelmErrorKind::NotFound),
            ("Error: something odd", HelmErrorKind::Failed),
        ];
        for (stderr, want) in cases {
            assert_eq!(classify(stderr), *want, "stderr: {stderr}");
        }
    }

    #[test]
    fn only_transient_kinds_are_retryable() {
        assert!(HelmErrorKind::InProgress.is_retryable());
        assert!(HelmErrorKind::Unavailable.is_retryable());
        assert!(HelmErrorKind::Timeout.is_retryable());
        for k in [
            HelmErrorKind::Rejected,
            HelmErrorKind::NotFound,
            HelmErrorKind::Binary,
            HelmErrorKind::Output,
            HelmErrorKind::Failed,
        ] {
            assert!(!k.is_retryable(), "{k}");
        }
    }

    #[test]
    fn folds_into_the_crate_error_keeping_retryability() {
        let busy = HelmError::new(
            HelmErrorKind::InProgress,
            "upgrade",
            "shop1",
            "store-shop1",
            "another operation is in progress",
        );
        let e = Error::from(busy);
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert!(e.is_retryable());
        assert!(e.to_string().contains("shop1"), "{e}");

        let rejected = HelmError::new(
            HelmErrorKind::Rejected,
            "upgrade",
            "shop1",
            "store-shop1",
            "template failed",
        );
        let e = Error::from(rejected);
        assert_eq!(e.kind(), ErrorKind::Internal);
        assert!(!e.is_retryable());

        let e = Error::from(HelmError::timeout(
            "upgrade",
            "shop1",
            "store-shop1",
            Duration::from_secs(3),
        ));
        assert_eq!(e.kind(), ErrorKind::Timeout);

        let e = Error::from(HelmError::new(
            HelmErrorKind::Binary,
            "upgrade",
            "shop1",
            "store-shop1",
            "helm not found",
        ));
        assert_eq!(e.kind(), ErrorKind::InvalidConfig);

        let e = Error::from(HelmError::new(
            HelmErrorKind::NotFound,
            "rollback",
            "shop1",
            "store-shop1",
            "release: not found",
        ));
        assert_eq!(e.kind(), ErrorKind::NotFound);
    }
}
