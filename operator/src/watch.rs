//! The operator's watches of its own kinds, slimmed on the way into their caches and indexed
//! by namespace.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock};

use kube::Resource;
use kube::api::Api;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use serde::de::DeserializeOwned;

use crate::api::{CassandraSink, Tenant, Topic};

/// A watched copy of every object of a kind, with the names of the objects of each namespace
/// beside it: a reconcile that needs its namespace's objects reads those few instead of
/// copying the whole store (at 5,000 Topics, 5,000 copies per Topic reconcile).
#[derive(Clone)]
pub struct Watched<K: Resource<DynamicType = ()> + Clone + 'static> {
    pub store: Store<K>,
    index: NamespaceIndex,
}

impl<K: Resource<DynamicType = ()> + Clone + 'static> Watched<K> {
    /// The watched objects of `namespace`.
    pub fn in_namespace(&self, namespace: &str) -> Vec<Arc<K>> {
        let index = self.index.0.read().expect("index lock");
        let names = index.live.get(namespace).into_iter().flatten();
        names.filter_map(|name| self.store.get(&ObjectRef::new(name).within(namespace))).collect()
    }

    /// A copy that holds `objects`, as if watched. For tests.
    #[cfg(test)]
    pub fn of(objects: impl IntoIterator<Item = K>) -> Self {
        let (store, mut writer) = kube::runtime::reflector::store();
        let index = NamespaceIndex::default();
        for obj in objects {
            let event = watcher::Event::Apply(obj);
            writer.apply_watcher_event(&event);
            index.apply(&event);
        }
        Watched { store, index }
    }
}

/// Names by namespace, kept from the same watch events as the store (a relist is built aside
/// and swapped in when complete, as the store does).
#[derive(Clone, Default)]
struct NamespaceIndex(Arc<RwLock<Names>>);

#[derive(Default)]
struct Names {
    live: HashMap<String, BTreeSet<String>>,
    relist: Option<HashMap<String, BTreeSet<String>>>,
}

impl NamespaceIndex {
    #[cfg(test)]
    fn names(&self, namespace: &str) -> Vec<String> {
        let names = self.0.read().expect("index lock");
        names.live.get(namespace).map(|n| n.iter().cloned().collect()).unwrap_or_default()
    }

    fn apply<K: Resource>(&self, event: &watcher::Event<K>) {
        let key = |obj: &K| Some((obj.meta().namespace.clone()?, obj.meta().name.clone()?));
        let mut names = self.0.write().expect("index lock");
        match event {
            watcher::Event::Apply(obj) => {
                if let Some((ns, name)) = key(obj) {
                    names.live.entry(ns).or_default().insert(name);
                }
            }
            watcher::Event::Delete(obj) => {
                if let Some((ns, name)) = key(obj)
                    && let Some(set) = names.live.get_mut(&ns)
                {
                    set.remove(&name);
                    if set.is_empty() {
                        names.live.remove(&ns);
                    }
                }
            }
            watcher::Event::Init => names.relist = Some(HashMap::new()),
            watcher::Event::InitApply(obj) => {
                if let (Some((ns, name)), Some(relist)) = (key(obj), names.relist.as_mut()) {
                    relist.entry(ns).or_default().insert(name);
                }
            }
            watcher::Event::InitDone => {
                if let Some(relist) = names.relist.take() {
                    names.live = relist;
                }
            }
        }
    }
}

/// What a shared watch tells its subscribers: an object as it now is, an object deleted, or
/// that the watch starts over (a relist follows as `Applied` objects).
#[derive(Clone, Debug)]
pub enum Change<K> {
    Applied(Arc<K>),
    Deleted(Arc<K>),
    Relisted,
}

/// The operator's one watch of a kind: the watched copy (with its namespace index) and the
/// changes, for every controller that reacts to that kind. Before, each controller that
/// reacted to a kind watched it itself (the Topics three times, the Tenants four), so each
/// change was sent, parsed and held that many times. Changes reach subscribers with
/// backpressure (none is ever dropped): each subscriber is a controller's trigger stream,
/// which the controller drains as it goes.
#[derive(Clone)]
pub struct Shared<K: Resource<DynamicType = ()> + Clone + 'static> {
    pub watched: Watched<K>,
    changes: async_broadcast::InactiveReceiver<Change<K>>,
    /// True once the first listing is complete (and in the copy). Not the store's
    /// `wait_until_ready`: kube keeps one waker for all its waiters, so of several
    /// controllers waiting at once only the last to poll would be woken.
    listed: tokio::sync::watch::Receiver<bool>,
}

/// How many changes may wait for the slowest subscriber before the watch waits for it.
const SHARED_BUFFER: usize = 1024;

impl<K> Shared<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    /// Starts the watch on the current tokio runtime; it runs as long as the process.
    pub fn start(api: Api<K>, config: watcher::Config) -> Self {
        use kube::runtime::WatchStreamExt;
        Self::from_events(watcher(api, config).default_backoff().modify(slim))
    }

    /// The copy and the changes of a stream of watch events, read on a task of its own.
    fn from_events(
        events: impl futures::Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
    ) -> Self {
        use futures::StreamExt;
        let (store, mut writer) = kube::runtime::reflector::store();
        let index = NamespaceIndex::default();
        let (mut tx, rx) = async_broadcast::broadcast(SHARED_BUFFER);
        // No subscriber yet (not the leader) is no reason to wait; a full buffer is.
        tx.set_await_active(false);
        tx.set_overflow(false);
        let indexing = index.clone();
        let (listed_tx, listed) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            let mut events = std::pin::pin!(events);
            while let Some(event) = events.next().await {
                let event = match event {
                    Ok(event) => event,
                    Err(e) => {
                        tracing::warn!(error = %e, kind = %K::kind(&()), "watch failed; retrying with backoff");
                        continue;
                    }
                };
                writer.apply_watcher_event(&event);
                indexing.apply(&event);
                let change = match event {
                    watcher::Event::Apply(obj) | watcher::Event::InitApply(obj) => Change::Applied(Arc::new(obj)),
                    watcher::Event::Delete(obj) => Change::Deleted(Arc::new(obj)),
                    watcher::Event::Init => Change::Relisted,
                    watcher::Event::InitDone => {
                        listed_tx.send_replace(true);
                        continue;
                    }
                };
                // Fails only when there is no subscriber: nobody to tell.
                let _ = tx.broadcast_direct(change).await;
            }
        });
        Shared { watched: Watched { store, index }, changes: rx.deactivate(), listed }
    }

    /// A copy filled by hand through the returned [`Feeder`], with no changes sent. For tests.
    #[cfg(test)]
    pub fn fed() -> (Self, Feeder<K>) {
        let (store, writer) = kube::runtime::reflector::store();
        let index = NamespaceIndex::default();
        let shared = Shared {
            watched: Watched { store, index: index.clone() },
            changes: async_broadcast::broadcast(1).1.deactivate(),
            listed: tokio::sync::watch::channel(true).1,
        };
        (shared, Feeder { writer, index })
    }

    /// Every change from now on, after every object the copy holds now (as `Applied`), so a
    /// controller that starts late (on becoming the leader) still sees every object. An
    /// object that changes at that moment may come twice; controllers do not mind.
    ///
    /// It starts once the first listing is complete: until then the copy shows nothing of it
    /// (the store swaps a listing in when it ends), and the objects listed before the
    /// subscription were told to no one. A leader that subscribed in the middle of a listing
    /// of 1,000 Topics (two pages) never reconciled the first 500.
    pub fn subscribe(&self) -> impl futures::Stream<Item = Change<K>> + Send + 'static {
        use futures::StreamExt;
        // Activated before the copy is read: a change applied after the read reaches the
        // subscriber as a change, one applied before it is in the copy.
        let from = |changes: &async_broadcast::InactiveReceiver<Change<K>>, store: &Store<K>| {
            let live = changes.activate_cloned();
            let now: Vec<Change<K>> = store.state().into_iter().map(Change::Applied).collect();
            futures::stream::iter(now).chain(live)
        };
        let (changes, store) = (self.changes.clone(), self.watched.store.clone());
        if *self.listed.borrow() {
            return from(&changes, &store).boxed();
        }
        let mut listed = self.listed.clone();
        futures::stream::once(async move {
            // Fails only when the watch task is gone (shutdown): then there is nothing to send.
            let _ = listed.wait_for(|listed| *listed).await;
            from(&changes, &store)
        })
        .flatten()
        .boxed()
    }

    /// The objects whose `fingerprint` differs from the one they last passed with, and every
    /// deletion: a trigger stream that leaves out the changes its controller does not react
    /// to. A relist starts over (every object passes once more). kube's `predicate_filter`
    /// would also swallow the final deletion, which matters to a Tenant's roll-up.
    pub fn changes_of(
        &self,
        fingerprint: impl Fn(&K) -> u64 + Send + 'static,
    ) -> impl futures::Stream<Item = Arc<K>> + Send + 'static {
        use futures::StreamExt;
        let mut seen: HashMap<String, u64> = HashMap::new();
        let uid = |obj: &K| obj.meta().uid.clone().unwrap_or_default();
        self.subscribe().filter_map(move |change| {
            let passed = match change {
                Change::Relisted => {
                    seen.clear();
                    None
                }
                Change::Applied(obj) => {
                    let print = fingerprint(&obj);
                    (seen.insert(uid(&obj), print) != Some(print)).then_some(obj)
                }
                Change::Deleted(obj) => {
                    seen.remove(&uid(&obj));
                    Some(obj)
                }
            };
            futures::future::ready(passed)
        })
    }

    /// The objects as they change (not deletions): a controller's trigger stream, for
    /// `Controller::for_shared_stream` with `self.watched.store`.
    pub fn applied(&self) -> impl futures::Stream<Item = Arc<K>> + Send + 'static {
        use futures::StreamExt;
        self.subscribe().filter_map(|change| {
            futures::future::ready(match change {
                Change::Applied(obj) => Some(obj),
                _ => None,
            })
        })
    }
}

/// What fills a [`Shared::fed`] copy: for tests, which have no watch to read.
#[cfg(test)]
pub struct Feeder<K: Resource<DynamicType = ()> + Clone + 'static> {
    writer: kube::runtime::reflector::store::Writer<K>,
    index: NamespaceIndex,
}

#[cfg(test)]
impl<K: Resource<DynamicType = ()> + Clone + 'static> Feeder<K> {
    /// The copy holds exactly `objects` from now on, as after a relist.
    pub fn relist(&mut self, objects: impl IntoIterator<Item = K>) {
        let events = std::iter::once(watcher::Event::Init)
            .chain(objects.into_iter().map(watcher::Event::InitApply))
            .chain(std::iter::once(watcher::Event::InitDone));
        for event in events {
            self.writer.apply_watcher_event(&event);
            self.index.apply(&event);
        }
    }
}

/// What fills [`Watches::fed`]: Tenants, Topics, sinks.
#[cfg(test)]
pub type Feeders = (Feeder<Tenant>, Feeder<Topic>, Feeder<CassandraSink>);

/// The operator's watches of its own three kinds, started once per process (a replica that is
/// not the leader keeps its copies warm, so a take-over starts from them).
#[derive(Clone)]
pub struct Watches {
    pub tenants: Shared<Tenant>,
    pub topics: Shared<Topic>,
    pub sinks: Shared<CassandraSink>,
    /// TopicGrants: who each Topic is shared with.
    pub grants: Shared<crate::api::TopicGrant>,
}

impl Watches {
    pub fn start(client: &kube::Client) -> Self {
        let config = watcher::Config::default;
        Watches {
            tenants: Shared::start(Api::all(client.clone()), config()),
            topics: Shared::start(Api::all(client.clone()), config()),
            sinks: Shared::start(Api::all(client.clone()), config()),
            grants: Shared::start(Api::all(client.clone()), config()),
        }
    }

    /// Copies filled by hand (Tenants, Topics, sinks), with no watch. For tests.
    #[cfg(test)]
    pub fn fed() -> (Self, Feeders) {
        let ((tenants, a), (topics, b), (sinks, c)) = (Shared::fed(), Shared::fed(), Shared::fed());
        // No test feeds grants: an empty copy.
        let (grants, _) = Shared::fed();
        (Watches { tenants, topics, sinks, grants }, (a, b, c))
    }
}

/// Drops from a watched copy what the operator never reads: `managedFields` and kubectl's
/// last-applied annotation. They were most of each cached object's memory (managedFields is
/// kept as a JSON tree), which counts at thousands of Topics.
pub fn slim<K: Resource>(obj: &mut K) {
    let meta = obj.meta_mut();
    meta.managed_fields = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use kube::ResourceExt;

    use super::*;

    fn topic(ns: &str, name: &str) -> Topic {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "tributary.dev/v1alpha1", "kind": "Topic",
            "metadata": {"name": name, "namespace": ns}, "spec": {}
        }))
        .expect("a topic")
    }

    fn named(change: &Change<Topic>) -> String {
        match change {
            Change::Applied(t) => format!("applied {}", t.name_any()),
            Change::Deleted(t) => format!("deleted {}", t.name_any()),
            Change::Relisted => "relisted".into(),
        }
    }

    #[tokio::test]
    async fn every_subscriber_gets_the_objects_already_watched_then_every_change() {
        use futures::{SinkExt, StreamExt};
        let (mut events, stream) = futures::channel::mpsc::channel(16);
        let shared = Shared::<Topic>::from_events(stream);
        events.send(Ok(watcher::Event::Init)).await.unwrap();
        events.send(Ok(watcher::Event::InitApply(topic("a", "t1")))).await.unwrap();
        events.send(Ok(watcher::Event::InitDone)).await.unwrap();
        let ready = shared.watched.store.clone();
        tokio::time::timeout(Duration::from_secs(10), ready.wait_until_ready()).await.unwrap().unwrap();

        // Two controllers subscribe after the first list: both see t1, then what follows.
        let (mut one, mut two) = (Box::pin(shared.subscribe()), Box::pin(shared.subscribe()));
        events.send(Ok(watcher::Event::Apply(topic("b", "t2")))).await.unwrap();
        events.send(Ok(watcher::Event::Delete(topic("a", "t1")))).await.unwrap();
        events.send(Ok(watcher::Event::Init)).await.unwrap();
        events.send(Ok(watcher::Event::InitApply(topic("b", "t2")))).await.unwrap();
        events.send(Ok(watcher::Event::InitDone)).await.unwrap();
        let expected = ["applied t1", "applied t2", "deleted t1", "relisted", "applied t2"];
        for subscriber in [&mut one, &mut two] {
            let got: Vec<String> =
                tokio::time::timeout(Duration::from_secs(10), subscriber.as_mut().take(5).collect::<Vec<_>>())
                    .await
                    .unwrap()
                    .iter()
                    .map(named)
                    .collect();
            assert_eq!(got, expected);
        }
        assert_eq!(shared.watched.in_namespace("b").len(), 1);
        assert!(shared.watched.in_namespace("a").is_empty(), "the copy and its index follow the deletion");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_controller_that_subscribes_in_the_middle_of_the_first_listing_gets_all_of_it() {
        use futures::{SinkExt, StreamExt};
        let (mut events, stream) = futures::channel::mpsc::channel(16);
        let shared = Shared::<Topic>::from_events(stream);
        // The first page of the listing is read before the leader's controllers subscribe...
        events.send(Ok(watcher::Event::Init)).await.unwrap();
        events.send(Ok(watcher::Event::InitApply(topic("a", "t1")))).await.unwrap();
        events.send(Ok(watcher::Event::InitApply(topic("a", "t2")))).await.unwrap();
        // ...three of them, each on a task of its own and already waiting (as the Topic, sink
        // and Tenant controllers do on one shared watch)...
        let mut subscribers = Vec::new();
        for _ in 0..3 {
            let mut subscriber = Box::pin(shared.subscribe());
            let (waiting, is_waiting) = tokio::sync::oneshot::channel();
            subscribers.push(tokio::spawn(async move {
                // Polled once here, so it waits with this task's waker.
                let first = futures::poll!(subscriber.next());
                assert!(first.is_pending(), "nothing is sent before the listing is complete");
                waiting.send(()).unwrap();
                let mut got: Vec<String> = subscriber.take(3).map(|c| named(&c)).collect().await;
                got.sort();
                got
            }));
            is_waiting.await.unwrap();
        }
        // ...the second page after.
        events.send(Ok(watcher::Event::InitApply(topic("b", "t3")))).await.unwrap();
        events.send(Ok(watcher::Event::InitDone)).await.unwrap();
        for subscriber in subscribers {
            let got = tokio::time::timeout(Duration::from_secs(10), subscriber)
                .await
                .expect("every subscriber is woken when the listing completes")
                .unwrap();
            assert_eq!(got, ["applied t1", "applied t2", "applied t3"]);
        }
    }

    #[tokio::test]
    async fn changes_of_passes_a_changed_fingerprint_every_deletion_and_everything_after_a_relist() {
        use futures::{SinkExt, StreamExt};
        let with = |uid: &str, generation: i64| {
            let mut t = topic("a", uid);
            t.metadata.uid = Some(uid.into());
            t.metadata.generation = Some(generation);
            t
        };
        let (mut events, stream) = futures::channel::mpsc::channel(16);
        let shared = Shared::<Topic>::from_events(stream);
        events.send(Ok(watcher::Event::Init)).await.unwrap();
        events.send(Ok(watcher::Event::InitDone)).await.unwrap();
        let ready = shared.watched.store.clone();
        tokio::time::timeout(Duration::from_secs(10), ready.wait_until_ready()).await.unwrap().unwrap();
        let passed = shared.changes_of(|t: &Topic| t.metadata.generation.unwrap_or_default() as u64);
        let sent = [
            watcher::Event::Apply(with("u1", 1)),
            watcher::Event::Apply(with("u1", 1)),
            watcher::Event::Apply(with("u2", 1)),
            watcher::Event::Apply(with("u1", 2)),
            watcher::Event::Delete(with("u2", 1)),
            watcher::Event::Init,
            watcher::Event::InitApply(with("u1", 2)),
            watcher::Event::InitDone,
            watcher::Event::Apply(with("u1", 2)),
        ];
        for event in sent {
            events.send(Ok(event)).await.unwrap();
        }
        let got: Vec<(String, Option<i64>)> = tokio::time::timeout(
            Duration::from_secs(10),
            passed.take(5).map(|t| (t.name_any(), t.metadata.generation)).collect::<Vec<_>>(),
        )
        .await
        .unwrap();
        let u = |n: &str, g| (n.to_string(), Some(g));
        // The unchanged u1 is left out, before and after the relist; u2's deletion passes.
        assert_eq!(got, [u("u1", 1), u("u2", 1), u("u1", 2), u("u2", 1), u("u1", 2)]);
    }

    #[test]
    fn the_index_follows_applies_deletes_and_relists() {
        let index = NamespaceIndex::default();
        index.apply(&watcher::Event::Apply(topic("a", "t1")));
        index.apply(&watcher::Event::Apply(topic("a", "t2")));
        index.apply(&watcher::Event::Apply(topic("b", "t1")));
        assert_eq!(index.names("a"), ["t1", "t2"]);
        index.apply(&watcher::Event::Delete(topic("a", "t1")));
        assert_eq!(index.names("a"), ["t2"]);
        // A relist replaces everything once it is complete, not before.
        index.apply(&watcher::Event::<Topic>::Init);
        index.apply(&watcher::Event::InitApply(topic("c", "t9")));
        assert_eq!(index.names("b"), ["t1"], "the old names serve until the relist is done");
        index.apply(&watcher::Event::<Topic>::InitDone);
        assert!(index.names("a").is_empty() && index.names("b").is_empty());
        assert_eq!(index.names("c"), ["t9"]);
    }
}
