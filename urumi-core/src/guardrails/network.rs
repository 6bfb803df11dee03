//! Pure builder of a store's NetworkPolicies.
//!
//! ```text
//!                      ingress controller namespace (cfg.ingress_namespace)
//!                                  │ TCP web ports
//!   other stores ✗                 ▼
//!   platform     ✗ ──▶  [ web pods ] ──TCP db ports──▶ [ db pods ]   (any pod of the namespace
//!                          │    │                                      may reach the db; nothing
//!                          │    └──UDP/TCP 53──▶ cluster DNS            from outside may)
//!                          └──TCP 80/443──▶ 0.0.0.0/0 and ::/0 except private, link-local
//!                                           and loopback ranges (plugin downloads)
//! ```
//!
//! `urumi-default-deny` selects every pod of the namespace for both directions, so any
//! traffic not allowed by one of the other policies is dropped.
//!
//! Trade-off of the internet rule: NetworkPolicy cannot say "not another namespace"
//! for addresses outside the cluster's pod network, so the rule excludes the private
//! ranges where pod, service and node networks live on almost every cluster
//! ([`PRIVATE_IPV4`](super::PRIVATE_IPV4)). On a cluster whose pods or services use
//! public addresses, other stores would be reachable on TCP 80/443 through that rule
//! (their own `urumi-default-deny` still refuses everything but the ingress controller).
//! Turn [`GuardrailsConfig::internet_egress`] off where stores need no downloads.

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer,
    NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::ObjectMeta;

use super::{GuardrailsConfig, PRIVATE_IPV4, PRIVATE_IPV6, StoreContext};

/// What the guardrails need to know about an engine's pods to write its policies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkProfile {
    /// Labels of the pods that serve HTTP behind the ingress (e.g. WordPress).
    pub web_pods: BTreeMap<String, String>,
    /// The container ports the ingress controller connects to (TCP).
    pub web_ports: Vec<u16>,
    /// Labels of the database pods, reachable only from inside the namespace.
    pub db_pods: BTreeMap<String, String>,
    /// The database's TCP ports.
    pub db_ports: Vec<u16>,
}

/// The label the API server puts on every namespace, holding its name.
const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

fn selector(labels: &BTreeMap<String, String>) -> LabelSelector {
    LabelSelector {
        match_labels: if labels.is_empty() {
            None
        } else {
            Some(labels.clone())
        },
        ..LabelSelector::default()
    }
}

fn all_pods() -> LabelSelector {
    LabelSelector::default()
}

fn namespace_named(name: &str) -> LabelSelector {
    LabelSelector {
        match_labels: Some(BTreeMap::from([(
            NAMESPACE_NAME_LABEL.to_owned(),
            name.to_owned(),
        )])),
        ..LabelSelector::default()
    }
}

fn ports(protocol: &str, ports: &[u16]) -> Vec<NetworkPolicyPort> {
    ports
        .iter()
        .map(|p| NetworkPolicyPort {
            port: Some(IntOrString::Int(i32::from(*p))),
            protocol: Some(protocol.to_owned()),
            ..NetworkPolicyPort::default()
        })
        .collect()
}

fn policy(ctx: &StoreContext, name: &str, spec: NetworkPolicySpec) -> NetworkPolicy {
    NetworkPolicy {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(ctx.namespace.clone()),
            labels: Some(ctx.labels()),
            ..ObjectMeta::default()
        },
        spec: Some(spec),
    }
}

fn types(t: &[&str]) -> Option<Vec<String>> {
    Some(t.iter().map(|s| (*s).to_owned()).collect())
}

/// Every NetworkPolicy of a store, in a stable order (see the module docs).
///
/// Names: `urumi-default-deny`, `urumi-allow-ingress-controller`, `urumi-allow-db`,
/// `urumi-allow-egress-dns`, `urumi-allow-egress-db`, `urumi-allow-egress-internet`
/// (when [`GuardrailsConfig::internet_egress`]), `urumi-allow-egress-extra` (when
/// [`GuardrailsConfig::egress_allow`] is not empty).
pub fn network_policies(
    ctx: &StoreContext,
    cfg: &GuardrailsConfig,
    profile: &NetworkProfile,
) -> Vec<NetworkPolicy> {
    let mut out = vec![
        policy(
            ctx,
            "urumi-default-deny",
            NetworkPolicySpec {
                pod_selector: Some(all_pods()),
                policy_types: types(&["Ingress", "Egress"]),
                ..NetworkPolicySpec::default()
            },
        ),
        policy(
            ctx,
            "urumi-allow-ingress-controller",
            NetworkPolicySpec {
                pod_selector: Some(selector(&profile.web_pods)),
                policy_types: types(&["Ingress"]),
                ingress: Some(vec![NetworkPolicyIngressRule {
                    from: Some(vec![NetworkPolicyPeer {
                        namespace_selector: Some(namespace_named(&cfg.ingress_namespace)),
                        ..NetworkPolicyPeer::default()
                    }]),
                    ports: Some(ports("TCP", &profile.web_ports)),
                }]),
                ..NetworkPolicySpec::default()
            },
        ),
        policy(
            ctx,
            "urumi-allow-db",
            NetworkPolicySpec {
                pod_selector: Some(selector(&profile.db_pods)),
                policy_types: types(&["Ingress"]),
                ingress: Some(vec![NetworkPolicyIngressRule {
                    // A bare podSelector selects pods of this namespace only.
                    from: Some(vec![NetworkPolicyPeer {
                        pod_selector: Some(all_pods()),
                        ..NetworkPolicyPeer::default()
                    }]),
                    ports: Some(ports("TCP", &profile.db_ports)),
                }]),
                ..NetworkPolicySpec::default()
            },
        ),
        policy(
            ctx,
            "urumi-allow-egress-dns",
            NetworkPolicySpec {
                pod_selector: Some(all_pods()),
                policy_types: types(&["Egress"]),
                egress: Some(vec![NetworkPolicyEgressRule {
                    to: Some(vec![NetworkPolicyPeer {
                        namespace_selector: Some(namespace_named(&cfg.dns_namespace)),
                        pod_selector: Some(selector(&cfg.dns_pod_labels)),
                        ..NetworkPolicyPeer::default()
                    }]),
                    ports: Some([ports("UDP", &[53]), ports("TCP", &[53])].concat()),
                }]),
                ..NetworkPolicySpec::default()
            },
        ),
        policy(
            ctx,
            "urumi-allow-egress-db",
            NetworkPolicySpec {
                pod_selector: Some(all_pods()),
                policy_types: types(&["Egress"]),
                egress: Some(vec![NetworkPolicyEgressRule {
                    to: Some(vec![NetworkPolicyPeer {
                        pod_selector: Some(selector(&profile.db_pods)),
                        ..NetworkPolicyPeer::default()
                    }]),
                    ports: Some(ports("TCP", &profile.db_ports)),
                }]),
                ..NetworkPolicySpec::default()
            },
        ),
    ];
    if cfg.internet_egress {
        let block = |cidr: &str, except: &[&str]| NetworkPolicyPeer {
            ip_block: Some(IPBlock {
                cidr: cidr.to_owned(),
                except: Some(except.iter().map(|s| (*s).to_owned()).collect()),
            }),
            ..NetworkPolicyPeer::default()
        };
        out.push(policy(
            ctx,
            "urumi-allow-egress-internet",
            NetworkPolicySpec {
                pod_selector: Some(all_pods()),
                policy_types: types(&["Egress"]),
                egress: Some(vec![NetworkPolicyEgressRule {
                    to: Some(vec![
                        block("0.0.0.0/0", PRIVATE_IPV4),
                        block("::/0", PRIVATE_IPV6),
                    ]),
                    ports: Some(ports("TCP", &[80, 443])),
                }]),
                ..NetworkPolicySpec::default()
            },
        ));
    }
    if !cfg.egress_allow.is_empty() {
        let rules = cfg
            .egress_allow
            .iter()
            .map(|a| NetworkPolicyEgressRule {
                to: Some(vec![NetworkPolicyPeer {
                    namespace_selector: Some(namespace_named(&a.namespace)),
                    pod_selector: Some(selector(&a.pod_labels)),
                    ..NetworkPolicyPeer::default()
                }]),
                ports: if a.ports.is_empty() {
                    None
                } else {
                    Some(ports("TCP", &a.ports))
                },
            })
            .collect();
        out.push(policy(
            ctx,
            "urumi-allow-egress-extra",
            NetworkPolicySpec {
                pod_selector: Some(all_pods()),
                policy_types: types(&["Egress"]),
                egress: Some(rules),
                ..NetworkPolicySpec::default()
            },
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guardrails::EgressAllow;
    use crate::guardrails::fixtures::mk_ctx;
    use crate::store::Plan;

    fn mk_profile() -> NetworkProfile {
        NetworkProfile {
            web_pods: BTreeMap::from([("app".to_owned(), "web".to_owned())]),
            web_ports: vec![8080, 80],
            db_pods: BTreeMap::from([("app".to_owned(), "db".to_owned())]),
            db_ports: vec![3306],
        }
    }

    fn find<'a>(ps: &'a [NetworkPolicy], name: &str) -> &'a NetworkPolicySpec {
        ps.iter()
            .find(|p| p.metadata.name.as_deref() == Some(name))
            .and_then(|p| p.spec.as_ref())
            .unwrap_or_else(|| panic!("no policy {name}"))
    }

    #[test]
    fn default_deny_selects_every_pod_both_ways() {
        let ps = network_policies(
            &mk_ctx("shop1", Plan::Small),
            &GuardrailsConfig::default(),
            &mk_profile(),
        );
        let deny = find(&ps, "urumi-default-deny");
        assert_eq!(deny.pod_selector, Some(LabelSelector::default()));
        assert_eq!(deny.policy_types, types(&["Ingress", "Egress"]));
        assert!(deny.ingress.is_none() && deny.egress.is_none());
        assert!(
            ps.iter()
                .all(|p| p.metadata.namespace.as_deref() == Some("store-shop1"))
        );
    }

    #[test]
    fn only_the_ingress_namespace_reaches_web_pods() {
        for ingress_ns in ["ingress-nginx", "kube-system"] {
            let cfg = GuardrailsConfig {
                ingress_namespace: ingress_ns.to_owned(),
                ..GuardrailsConfig::default()
            };
            let ps = network_policies(&mk_ctx("shop1", Plan::Small), &cfg, &mk_profile());
            let allow = find(&ps, "urumi-allow-ingress-controller");
            assert_eq!(allow.pod_selector, Some(selector(&mk_profile().web_pods)));
            let rule = &allow.ingress.as_ref().expect("ingress")[0];
            let from = rule.from.as_ref().expect("from");
            assert_eq!(from.len(), 1);
            assert_eq!(
                from[0].namespace_selector,
                Some(namespace_named(ingress_ns))
            );
            assert!(from[0].pod_selector.is_none() && from[0].ip_block.is_none());
            let got: Vec<_> = rule
                .ports
                .iter()
                .flatten()
                .map(|p| p.port.clone())
                .collect();
            assert_eq!(
                got,
                vec![Some(IntOrString::Int(8080)), Some(IntOrString::Int(80))]
            );
        }
    }

    #[test]
    fn db_is_reachable_from_the_namespace_only() {
        let ps = network_policies(
            &mk_ctx("shop1", Plan::Small),
            &GuardrailsConfig::default(),
            &mk_profile(),
        );
        let db = find(&ps, "urumi-allow-db");
        let rule = &db.ingress.as_ref().expect("ingress")[0];
        let from = &rule.from.as_ref().expect("from")[0];
        assert_eq!(from.pod_selector, Some(LabelSelector::default()));
        assert!(
            from.namespace_selector.is_none(),
            "a namespaceSelector would open other namespaces"
        );
        assert_eq!(
            rule.ports.as_ref().expect("ports")[0].port,
            Some(IntOrString::Int(3306))
        );
    }

    #[test]
    fn internet_egress_excludes_private_ranges_on_web_ports_only() {
        let ps = network_policies(
            &mk_ctx("shop1", Plan::Small),
            &GuardrailsConfig::default(),
            &mk_profile(),
        );
        let net = find(&ps, "urumi-allow-egress-internet");
        let rule = &net.egress.as_ref().expect("egress")[0];
        let v4 = rule.to.as_ref().expect("to")[0]
            .ip_block
            .as_ref()
            .expect("ipBlock");
        assert_eq!(v4.cidr, "0.0.0.0/0");
        let except = v4.except.as_ref().expect("except");
        for cidr in [
            "10.0.0.0/8",
            "172.16.0.0/12",
            "192.168.0.0/16",
            "169.254.0.0/16",
        ] {
            assert!(except.iter().any(|e| e == cidr), "{cidr} must be excluded");
        }
        let got: Vec<_> = rule
            .ports
            .iter()
            .flatten()
            .map(|p| p.port.clone())
            .collect();
        assert_eq!(
            got,
            vec![Some(IntOrString::Int(80)), Some(IntOrString::Int(443))]
        );

        let closed = GuardrailsConfig {
            internet_egress: false,
            ..GuardrailsConfig::default()
        };
        let ps = network_policies(&mk_ctx("shop1", Plan::Small), &closed, &mk_profile());
        assert!(
            ps.iter()
                .all(|p| p.metadata.name.as_deref() != Some("urumi-allow-egress-internet"))
        );
    }

    #[test]
    fn dns_and_extra_egress() {
        let cfg = GuardrailsConfig {
            egress_allow: vec![EgressAllow {
                namespace: "urumi-system".to_owned(),
                pod_labels: BTreeMap::new(),
                ports: vec![8080],
            }],
            ..GuardrailsConfig::default()
        };
        let ps = network_policies(&mk_ctx("shop1", Plan::Small), &cfg, &mk_profile());
        let dns = &find(&ps, "urumi-allow-egress-dns")
            .egress
            .as_ref()
            .expect("egress")[0];
        let protos: Vec<_> = dns
            .ports
            .iter()
            .flatten()
            .map(|p| p.protocol.clone())
            .collect();
        assert_eq!(protos, vec![Some("UDP".to_owned()), Some("TCP".to_owned())]);
        let to = &dns.to.as_ref().expect("to")[0];
        assert_eq!(to.namespace_selector, Some(namespace_named("kube-system")));
        let extra = &find(&ps, "urumi-allow-egress-extra")
            .egress
            .as_ref()
            .expect("egress")[0];
        assert_eq!(
            extra.to.as_ref().expect("to")[0].namespace_selector,
            Some(namespace_named("urumi-system"))
        );
        assert_eq!(ps.len(), 7);
    }
}
