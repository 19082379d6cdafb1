//! The operator's watches of its own kinds, slimmed on the way into their caches and indexed
//! by namespace.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock};

use kube::Resource;
use kube::api::Api;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use serde::de::DeserializeOwned;

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

/// A controller's own watch and the copy it fills, with each object slimmed on the way in
/// (see [`slim`]); for `Controller::for_stream`, in place of `Controller::new`.
pub fn slim_watch<K>(
    api: Api<K>,
    config: watcher::Config,
) -> (Watched<K>, impl futures::Stream<Item = Result<K, watcher::Error>> + Send + 'static)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    use futures::TryStreamExt;
    use kube::runtime::{WatchStreamExt, reflector};
    let (store, writer) = reflector::store();
    let index = NamespaceIndex::default();
    let indexing = index.clone();
    let stream = watcher(api, config)
        .default_backoff()
        .modify(slim)
        .reflect(writer)
        .inspect_ok(move |event| indexing.apply(event))
        .applied_objects();
    (Watched { store, index }, stream)
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
    use super::*;
    use crate::api::Topic;

    fn topic(ns: &str, name: &str) -> Topic {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "tributary.dev/v1alpha1", "kind": "Topic",
            "metadata": {"name": name, "namespace": ns}, "spec": {}
        }))
        .expect("a topic")
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
