//! The operator's watches of its own kinds, slimmed on the way into their caches.

use kube::Resource;
use kube::api::Api;
use serde::de::DeserializeOwned;

/// A controller's own watch and the store it fills, with each object slimmed on the way in
/// (see [`slim`]); for `Controller::for_stream`, in place of `Controller::new`.
pub fn slim_watch<K>(
    api: Api<K>,
    config: kube::runtime::watcher::Config,
) -> (
    kube::runtime::reflector::Store<K>,
    impl futures::Stream<Item = Result<K, kube::runtime::watcher::Error>> + Send + 'static,
)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    use kube::runtime::{WatchStreamExt, reflector, watcher};
    let (store, writer) = reflector::store();
    let stream = watcher(api, config).default_backoff().modify(slim).reflect(writer).applied_objects();
    (store, stream)
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
