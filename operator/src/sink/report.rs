//! The sink pods' reports in the CassandraSinks' status: every `TRIBUTARY_SINK_REPORT_SECONDS`
//! the operator lists the running sink pods (one LIST for all sinks), asks each for its
//! [`SinkReport`] over HTTP, and writes `recordsWritten`, `lastError` and `lastErrorTime`
//! where they changed.
//!
//! - `recordsWritten` counts each record once whatever happens to the pods: each pod reports
//!   the count of each partition it owns, which the sink commits with the partition's offset
//!   ([`crate::api::contract::count_metadata`]), so the pod that takes a partition over goes
//!   on from the last commit. `partitionsCounted` keeps the highest count seen per partition
//!   (a new owner starts from the commit, below what the old one had reported, and catches
//!   up), and `recordsWritten` is their sum. What a killed pod wrote after its last commit is
//!   read and written again by the next owner, and counted then.
//! - These fields have their own field manager; the reconcile never writes them, so neither
//!   can undo the other's update.
//! - A pod that does not answer within [`ASK_TIMEOUT`] is skipped this time.
//! - Only the pods of the Deployment the operator wrote for the sink are asked, found by the
//!   owner chain pod → ReplicaSet → Deployment → CassandraSink, uid by uid. Labels are the
//!   team's to write: a pod of the team's labelled as a sink is never asked. An answer is read
//!   up to [`MAX_REPORT_BYTES`] and its error text kept to [`MAX_ERROR_CHARS`], so no pod can
//!   grow the operator's memory.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ListMeta;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::core::Request;
use kube::runtime::reflector::Store;
use kube::{Resource, ResourceExt};
use serde::Deserialize;

use super::build::{HTTP_PORT, SINK_LABEL};
use crate::api::contract::{REPORT_PATH, SinkReport};
use crate::api::topic::MAX_PARTITIONS;
use crate::api::{CassandraSink, CassandraSinkStatus, PartitionCount};
use crate::controller::Context;

/// Field manager of the fields this loop writes.
const FIELD_MANAGER: &str = "tributary-sink-report";
/// How long a pod has to answer.
const ASK_TIMEOUT: Duration = Duration::from_secs(2);
/// Pods asked at once.
const ASK_CONCURRENCY: usize = 16;
/// The largest answer read from a pod; a report is a few hundred bytes.
const MAX_REPORT_BYTES: usize = 64 * 1024;
/// The most characters of a reported error kept in the status.
pub const MAX_ERROR_CHARS: usize = 1024;

/// The fields of a sink's status that come from its pods' reports.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Reported {
    pub records_written: Option<i64>,
    pub last_error: Option<String>,
    pub last_error_time: Option<String>,
    pub partitions_counted: Vec<PartitionCount>,
}

impl Reported {
    pub fn of(status: &CassandraSinkStatus) -> Reported {
        Reported {
            records_written: status.records_written,
            last_error: status.last_error.clone(),
            last_error_time: status.last_error_time.clone(),
            partitions_counted: status.partitions_counted.clone(),
        }
    }

    /// `status` without these fields (what the reconcile writes).
    pub fn strip(status: &CassandraSinkStatus) -> CassandraSinkStatus {
        CassandraSinkStatus {
            records_written: None,
            last_error: None,
            last_error_time: None,
            partitions_counted: Vec::new(),
            ..status.clone()
        }
    }

    /// The new fields from the reports of the pods running now: each partition's count is
    /// the highest known (a partition no pod reports keeps its own), `recordsWritten` their
    /// sum, and the newest error becomes the last one.
    pub fn tally(&self, reports: &[SinkReport]) -> Reported {
        let mut counts: BTreeMap<i32, i64> =
            self.partitions_counted.iter().map(|c| (c.partition, c.records_written)).collect();
        // Partitions a topic can have only: the list stays within the schema's bound.
        let reported =
            reports.iter().flat_map(|r| &r.partitions).filter(|c| (0..MAX_PARTITIONS).contains(&c.partition));
        for c in reported {
            let known = counts.entry(c.partition).or_default();
            *known = (*known).max(c.records_written);
        }
        let partitions_counted: Vec<PartitionCount> =
            counts.iter().map(|(p, n)| PartitionCount { partition: *p, records_written: *n }).collect();
        // Until a partition is counted, the figure stays what it was (none for a new sink).
        let records_written = if partitions_counted.is_empty() {
            self.records_written
        } else {
            Some(counts.values().fold(0i64, |sum, n| sum.saturating_add(*n)))
        };
        // Compared as instants: as text, `…:00Z` would sort after `…:00.1Z` (a zero fraction is
        // not printed).
        let at = |t: &str| t.parse::<Timestamp>().ok();
        let newest = reports.iter().filter_map(|r| r.last_error.as_ref()).max_by_key(|e| at(&e.time));
        let (last_error, last_error_time) = match newest {
            Some(e) if self.last_error_time.as_deref().is_none_or(|t| at(&e.time) > at(t)) => {
                (Some(e.message.chars().take(MAX_ERROR_CHARS).collect()), Some(e.time.chars().take(64).collect()))
            }
            _ => (self.last_error.clone(), self.last_error_time.clone()),
        };
        Reported { records_written, last_error, last_error_time, partitions_counted }
    }
}

/// Reads the reports into the status every `config.sink_report`, until dropped.
pub async fn run(ctx: Arc<Context>, sinks: Store<CassandraSink>) {
    let http: HttpClient<HttpConnector, Empty<Bytes>> = HttpClient::builder(TokioExecutor::new()).build_http();
    let mut every = tokio::time::interval(ctx.config.sink_report);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        if let Err(e) = once(&ctx, &sinks, &http).await {
            tracing::warn!(error = %e, "reading the sink pods' reports failed; trying again next time");
        }
    }
}

async fn once(
    ctx: &Context,
    sinks: &Store<CassandraSink>,
    http: &HttpClient<HttpConnector, Empty<Bytes>>,
) -> Result<(), kube::Error> {
    // The owner chain, uid by uid: sink → its Deployment → their ReplicaSets → their pods.
    let sink_uids: HashMap<String, (String, String)> =
        sinks.state().iter().filter_map(|s| Some((s.uid()?, (s.namespace()?, s.name_any())))).collect();
    let deployments = controlled_by(ctx, "/apis/apps/v1/deployments", &sink_uids).await?;
    let replica_sets = controlled_by(ctx, "/apis/apps/v1/replicasets", &deployments).await?;
    // (namespace, sink) → the addresses of its running pods.
    let mut running: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    let mut params = ListParams::default().labels(SINK_LABEL).limit(PODS_PER_PAGE);
    loop {
        let request = Request::new("/api/v1/pods").list(&params).map_err(kube::Error::BuildRequest)?;
        let page: PodPage = ctx.client.request(request).await?;
        for pod in page.items {
            let (meta, status) = (pod.metadata, pod.status.unwrap_or_default());
            let Some(sink) = controller_uid(&meta.owner_references).and_then(|rs| replica_sets.get(rs)) else {
                continue;
            };
            let (Some(ns), Some(ip)) = (meta.namespace, status.pod_ip) else {
                continue;
            };
            // The chain's own namespace: an owner reference never crosses namespaces.
            if ns != sink.0 || status.phase.as_deref() != Some("Running") || meta.deletion_timestamp.is_some() {
                continue;
            }
            let address = if ip.contains(':') { format!("[{ip}]:{HTTP_PORT}") } else { format!("{ip}:{HTTP_PORT}") };
            running.entry(sink.clone()).or_default().push(address);
        }
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => break,
        }
    }
    for sink in sinks.state() {
        let (Some(ns), name) = (sink.namespace(), sink.name_any()) else { continue };
        if sink.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let pods = running.remove(&(ns.clone(), name.clone())).unwrap_or_default();
        let reports: Vec<SinkReport> = futures::stream::iter(pods)
            .map(|address| async move { ask(http, &address).await })
            .buffer_unordered(ASK_CONCURRENCY)
            .filter_map(std::future::ready)
            .collect()
            .await;
        let status = sink.status.clone().unwrap_or_default();
        let before = Reported::of(&status);
        let after = before.tally(&reports);
        if after == before {
            continue;
        }
        let patch = serde_json::json!({
            "apiVersion": CassandraSink::api_version(&()),
            "kind": CassandraSink::kind(&()),
            "status": {
                "recordsWritten": after.records_written,
                "lastError": after.last_error,
                "lastErrorTime": after.last_error_time,
                "partitionsCounted": after.partitions_counted,
            },
        });
        let api: Api<CassandraSink> = Api::namespaced(ctx.client.clone(), &ns);
        if let Err(e) = api.patch_status(&name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&patch)).await
        {
            tracing::debug!(sink = %format!("{ns}/{name}"), error = %e, "status not written; next time");
        }
    }
    Ok(())
}

/// Sink pods listed per request.
const PODS_PER_PAGE: u32 = 100;

/// The uid of the controller among `owners`.
fn controller_uid(owners: &[SinkOwner]) -> Option<&str> {
    owners.iter().find(|o| o.controller == Some(true)).map(|o| o.uid.as_str())
}

/// The objects at `path` (labelled as a sink's) whose controller is one of `owners`, each with
/// its owner's sink: uid → (namespace, sink). Only metadata is listed, a page at a time.
async fn controlled_by(
    ctx: &Context,
    path: &str,
    owners: &HashMap<String, (String, String)>,
) -> Result<HashMap<String, (String, String)>, kube::Error> {
    let mut found = HashMap::new();
    let mut params = ListParams::default().labels(SINK_LABEL).limit(PODS_PER_PAGE);
    loop {
        let request = Request::new(path).list_metadata(&params).map_err(kube::Error::BuildRequest)?;
        let page: MetadataPage = ctx.client.request(request).await?;
        for item in page.items {
            let meta = item.metadata;
            if let (Some(uid), Some(sink)) =
                (meta.uid, controller_uid(&meta.owner_references).and_then(|o| owners.get(o)))
                && meta.namespace.as_deref() == Some(sink.0.as_str())
            {
                found.insert(uid, sink.clone());
            }
        }
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => return Ok(found),
        }
    }
}

#[derive(Deserialize)]
struct MetadataPage {
    metadata: ListMeta,
    items: Vec<MetadataItem>,
}

#[derive(Deserialize)]
struct MetadataItem {
    metadata: SinkPodMeta,
}

/// An owner reference, as far as the chain needs it.
#[derive(Deserialize)]
struct SinkOwner {
    uid: String,
    controller: Option<bool>,
}

/// A page of the sink pods, with only what the reports need. Listed as `Pod`s, every field was
/// decoded (`managedFields` as JSON trees) for the whole list at once: a heap profile at 200
/// sinks found 11 MB of the operator's 38 MB live heap inside this loop. Unknown fields are
/// skipped without being kept.
#[derive(Deserialize)]
struct PodPage {
    metadata: ListMeta,
    items: Vec<SinkPod>,
}

#[derive(Deserialize)]
struct SinkPod {
    metadata: SinkPodMeta,
    status: Option<SinkPodStatus>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SinkPodMeta {
    namespace: Option<String>,
    uid: Option<String>,
    #[serde(default)]
    owner_references: Vec<SinkOwner>,
    deletion_timestamp: Option<String>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SinkPodStatus {
    phase: Option<String>,
    #[serde(rename = "podIP")]
    pod_ip: Option<String>,
}

/// One pod's report, or `None` when it does not answer in time or answers something else.
async fn ask(http: &HttpClient<HttpConnector, Empty<Bytes>>, address: &str) -> Option<SinkReport> {
    let uri: http::Uri = format!("http://{address}{REPORT_PATH}").parse().ok()?;
    let answer = tokio::time::timeout(ASK_TIMEOUT, async {
        let response = http.get(uri).await.ok()?;
        if !response.status().is_success() {
            return None;
        }
        // Read no further than a report can be: a pod answering without end is cut off.
        let body = http_body_util::Limited::new(response.into_body(), MAX_REPORT_BYTES).collect().await.ok()?;
        serde_json::from_slice::<SinkReport>(&body.to_bytes()).ok()
    })
    .await;
    answer.ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::contract::ReportedError;

    /// The slim page reads the fields as the API server names them (a Pod as k8s-openapi
    /// writes it), skips the rest, and carries the next page's token.
    #[test]
    fn a_page_of_sink_pods_reads_namespace_uid_owner_deletion_phase_and_ip_and_the_next_token() {
        use k8s_openapi::api::core::v1::{Pod, PodStatus};
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ManagedFieldsEntry, ObjectMeta, Time};
        let pod = Pod {
            metadata: ObjectMeta {
                name: Some("readings-0".into()),
                namespace: Some("water".into()),
                uid: Some("u-1".into()),
                deletion_timestamp: Some(Time("2026-12-04T20:00:00Z".parse().unwrap())),
                labels: Some([(SINK_LABEL.to_string(), "readings".to_string())].into()),
                owner_references: Some(vec![k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
                    uid: "rs-1".into(),
                    controller: Some(true),
                    kind: "ReplicaSet".into(),
                    ..Default::default()
                }]),
                managed_fields: Some(vec![ManagedFieldsEntry {
                    manager: Some("kubelet".into()),
                    ..Default::default()
                }]),
                ..Default::default()
            },
            status: Some(PodStatus {
                phase: Some("Running".into()),
                pod_ip: Some("10.244.0.7".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let list = serde_json::json!({"apiVersion": "v1", "kind": "PodList", "metadata": {"continue": "next"}, "items": [pod]});
        let page: PodPage = serde_json::from_value(list).unwrap();
        assert_eq!(page.metadata.continue_.as_deref(), Some("next"));
        let [pod] = &page.items[..] else { panic!("one pod") };
        assert_eq!(pod.metadata.namespace.as_deref(), Some("water"));
        assert_eq!(pod.metadata.uid.as_deref(), Some("u-1"));
        // The owner chain, not the label, ties a pod to its sink.
        assert_eq!(controller_uid(&pod.metadata.owner_references), Some("rs-1"));
        // Read, so a pod being deleted is skipped (a misspelt field would read as None).
        assert_eq!(pod.metadata.deletion_timestamp.as_deref(), Some("2026-12-04T20:00:00Z"));
        let status = pod.status.as_ref().unwrap();
        assert_eq!((status.phase.as_deref(), status.pod_ip.as_deref()), (Some("Running"), Some("10.244.0.7")));
    }

    /// A pod answering `head` and then `body_bytes` bytes; returns how many it could send.
    async fn pod_answering(head: String, body_bytes: usize) -> (String, tokio::task::JoinHandle<usize>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let served = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 4096];
            let _ = socket.read(&mut request).await;
            socket.write_all(head.as_bytes()).await.unwrap();
            let chunk = vec![b' '; 64 * 1024];
            let mut sent = 0;
            while sent < body_bytes {
                let n = chunk.len().min(body_bytes - sent);
                if socket.write_all(&chunk[..n]).await.is_err() {
                    break;
                }
                sent += n;
            }
            sent
        });
        (address, served)
    }

    #[tokio::test]
    async fn an_answer_past_the_bound_is_dropped_unread_and_a_report_is_read() {
        let http: HttpClient<HttpConnector, Empty<Bytes>> = HttpClient::builder(TokioExecutor::new()).build_http();
        // 128 MiB, as a hostile pod answered: the operator stops reading at the bound.
        let huge = 128 * 1024 * 1024;
        let head = format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {huge}\r\n\r\n");
        let (address, served) = pod_answering(head, huge).await;
        assert_eq!(ask(&http, &address).await, None);
        let sent = served.await.unwrap();
        assert!(sent < huge / 4, "the operator stopped reading after the bound: {sent} bytes were taken");

        let body = r#"{"recordsWritten":7,"deadLettered":0}"#;
        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len());
        let (address, _) = pod_answering(head, 0).await;
        assert_eq!(ask(&http, &address).await.map(|r| r.records_written), Some(7));
    }

    #[test]
    fn a_reported_error_is_kept_to_its_bound() {
        let long = "e".repeat(10 * MAX_ERROR_CHARS);
        let reported = Reported::default().tally(&[with_error(&long, "2026-12-02T04:00:00Z")]);
        assert_eq!(reported.last_error.map(|e| e.chars().count()), Some(MAX_ERROR_CHARS));
    }

    /// A pod's report of the partitions it owns: `(partition, count)`.
    fn report(partitions: &[(i32, i64)]) -> SinkReport {
        SinkReport {
            // The pod's own counter, which the status no longer sums.
            records_written: 999,
            partitions: partitions
                .iter()
                .map(|&(partition, records_written)| PartitionCount { partition, records_written })
                .collect(),
            ..SinkReport::default()
        }
    }

    fn with_error(message: &str, time: &str) -> SinkReport {
        SinkReport {
            last_error: Some(ReportedError { message: message.into(), time: time.into() }),
            ..report(&[(0, 1)])
        }
    }

    fn counted(reported: &Reported) -> Vec<(i32, i64)> {
        reported.partitions_counted.iter().map(|c| (c.partition, c.records_written)).collect()
    }

    #[test]
    fn the_total_is_the_sum_of_each_partitions_newest_count() {
        let first = Reported::default().tally(&[report(&[(0, 100), (1, 40)]), report(&[(2, 10)])]);
        assert_eq!(counted(&first), [(0, 100), (1, 40), (2, 10)]);
        assert_eq!(first.records_written, Some(150));
        // Read again: each partition's figure is its count now, not added to the last one.
        let second = first.tally(&[report(&[(0, 130), (1, 40)]), report(&[(2, 10)])]);
        assert_eq!(second.records_written, Some(180));
        // Nothing changed: the same fields, so no status write.
        assert_eq!(second.tally(&[report(&[(0, 130), (1, 40)]), report(&[(2, 10)])]), second);
    }

    #[test]
    fn a_partition_taken_over_keeps_its_highest_count_until_the_new_owner_passes_it() {
        // The pod owning partition 1 reported 40, wrote 25 more, and was killed before its
        // next report and its next commit (at 30). The new owner goes on from the commit.
        let before = Reported::default().tally(&[report(&[(0, 100)]), report(&[(1, 40)])]);
        let taken_over = before.tally(&[report(&[(0, 100), (1, 30)])]);
        assert_eq!(counted(&taken_over), [(0, 100), (1, 40)], "never below what was reported");
        assert_eq!(taken_over.records_written, Some(140));
        // It writes the records after the commit again, and those after: 65 in all.
        let caught_up = taken_over.tally(&[report(&[(0, 100), (1, 65)])]);
        assert_eq!(caught_up.records_written, Some(165), "each of the partition's records once");
    }

    #[test]
    fn a_partition_no_pod_reports_keeps_its_last_count() {
        let before = Reported::default().tally(&[report(&[(0, 7), (1, 5)])]);
        // Partition 1's pod is gone and no other owns it yet; then no pod answers at all.
        let after = before.tally(&[report(&[(0, 9)])]);
        assert_eq!((counted(&after), after.records_written), (vec![(0, 9), (1, 5)], Some(14)));
        assert_eq!(after.tally(&[]), after);
    }

    #[test]
    fn partitions_beyond_any_topic_are_not_kept() {
        let reported = Reported::default().tally(&[report(&[(-1, 5), (0, 1), (MAX_PARTITIONS, 5)])]);
        assert_eq!((counted(&reported), reported.records_written), (vec![(0, 1)], Some(1)));
    }

    #[test]
    fn the_newest_error_wins_and_an_older_one_never_replaces_it() {
        let t1 = "2026-12-02T04:00:00Z";
        let t2 = "2026-12-02T04:05:00Z";
        let reported = Reported::default().tally(&[with_error("old", t1), with_error("new", t2)]);
        assert_eq!((reported.last_error.as_deref(), reported.last_error_time.as_deref()), (Some("new"), Some(t2)));
        // Pod b is gone; a's older error does not come back.
        let later = reported.tally(&[with_error("old", t1)]);
        assert_eq!(later.last_error.as_deref(), Some("new"));
        // A tenth of a second after a whole second is later (as text it would sort first).
        let fraction = Reported::default().tally(&[with_error("first", "2026-12-02T04:05:00Z")]);
        let whole = fraction.tally(&[with_error("second", "2026-12-02T04:05:00.1Z")]);
        assert_eq!(whole.last_error.as_deref(), Some("second"));
    }

    #[test]
    fn a_sink_reports_nothing_until_a_partition_is_counted() {
        assert_eq!(Reported::default().tally(&[]), Reported::default());
        // A pod that owns no partition yet (or a sink older than the counts).
        assert_eq!(Reported::default().tally(&[report(&[])]).records_written, None);
        let some = Reported::default().tally(&[report(&[(0, 5)])]);
        assert_eq!(some.tally(&[]).records_written, Some(5));
    }

    #[test]
    fn the_reconcile_writes_none_of_the_reported_fields() {
        let status = CassandraSinkStatus {
            records_written: Some(5),
            last_error: Some("x".into()),
            last_error_time: Some("t".into()),
            partitions_counted: vec![PartitionCount { partition: 0, records_written: 5 }],
            lag: Some(3),
            ..Default::default()
        };
        let stripped = Reported::strip(&status);
        assert_eq!(Reported::of(&stripped), Reported::default());
        assert_eq!(stripped.lag, Some(3));
    }
}
