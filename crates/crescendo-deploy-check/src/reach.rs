//! How a client workload (an agent, a `submit` Job) reaches the controller: its
//! `--controller` URL names a Service of the base whose port leads to the controller's
//! `--listen` port, and every NetworkPolicy that selects the controller lets it in.

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::cli;
use crate::manifest::{Document, Resource};
use crate::workload::{Workload, listeners, match_labels, selects, service_target};

/// `client`'s `--controller` URL (`None`: it has none) reaches `controller`, and the
/// NetworkPolicies let it. `what` names the client in messages ("agent", "submit").
pub(crate) fn check_reaches(
    docs: &[Document],
    workloads: &[Workload<'_>],
    controller: &Workload<'_>,
    client: &Workload<'_>,
    what: &str,
    url: Option<&str>,
    out: &mut Vec<String>,
) {
    let Some(url) = url else {
        out.push(format!("{}: {what} without --controller", client.doc));
        return;
    };
    let Some((host, port)) = cli::url_host_port(url) else {
        out.push(format!(
            "{}: --controller {url} is not an http URL",
            client.doc
        ));
        return;
    };
    match service_target(docs, workloads, &host, port) {
        Ok(targets) if targets.iter().any(|(l, _)| *l == controller.labels) => {}
        Ok(_) => out.push(format!(
            "{}: --controller {url} does not reach the controller's --listen port",
            client.doc
        )),
        Err(e) => out.push(format!("{}: --controller {url}: {e}", client.doc)),
    }
    check_allowed(docs, controller, client, out);
}

/// Every policy that selects the controller must let `client` reach its port.
fn check_allowed(
    docs: &[Document],
    controller: &Workload<'_>,
    client: &Workload<'_>,
    out: &mut Vec<String>,
) {
    let listen: Vec<i32> = listeners(controller).map(|(_, l)| l).collect();
    for doc in docs {
        let Resource::NetworkPolicy(np) = &doc.resource else {
            continue;
        };
        let spec = np.spec.clone().unwrap_or_default();
        if !selects(
            &match_labels(spec.pod_selector.as_ref()),
            &controller.labels,
        ) {
            continue;
        }
        let allowed = spec.ingress.iter().flatten().any(|rule| {
            let from_client = rule
                .from
                .iter()
                .flatten()
                .any(|peer| selects(&match_labels(peer.pod_selector.as_ref()), &client.labels));
            let ports = rule.ports.as_deref().unwrap_or_default();
            let port_ok = ports.is_empty()
                || ports
                    .iter()
                    .any(|p| matches!(&p.port, Some(IntOrString::Int(n)) if listen.contains(n)));
            from_client && port_ok
        });
        if !allowed {
            out.push(format!(
                "{doc}: does not let {} reach the controller's port {listen:?}",
                client.doc
            ));
        }
    }
}
