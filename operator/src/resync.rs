//! The drift resync, kept out of the way of new work.
//!
//! A reconcile that finds its object settled asks to look again after the resync interval
//! (`Context::resync`). Left to the controller's scheduler, those requeues sit in the same
//! queue as new and changed objects, in time order: at 500 tenants with a 30 s interval the
//! resyncs asked for more reconciles than 16 slots could run, the queue never drained, and
//! 55 of 500 new sinks had not been looked at after 25 minutes.
//!
//! Here the resync requeue is taken out of the scheduler and kept in a queue of its own.
//! An object is handed back to the controller when its time comes, and only while fewer than
//! half the controller's slots are busy, so a new or changed object always finds a slot; when
//! the cluster is too big for the interval the resyncs run late (`tributary_resyncs_overdue`)
//! instead of piling up in front of everything else.
//!
//! Due times fall on a grid of [`TICK`]: the resyncs of one second are handed over together,
//! so they run side by side and their Kafka calls share batched requests (one DescribeTopics
//! and one DescribeConfigs for the Topics of that second instead of two per Topic).
//!
//! A reconcile that ends in any other way
//! (a retry, a wait for a change, an error) takes its object out of this queue: a spec Kafka
//! refused stays untouched until it changes, as before.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::Stream;
use kube::Resource;
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use rand::Rng;
use tokio::time::Instant;

use crate::error::Result;
use crate::metrics::Metrics;

/// How often a waiting resync looks again at the controller's free slots.
const SLOT_POLL: Duration = Duration::from_millis(20);
/// The grid resyncs are due on: the objects that fall due within one tick run together.
const TICK: Duration = Duration::from_secs(1);
/// The longest the queue sleeps before looking at its head again (a resync added while it
/// sleeps is due one interval later, so this only bounds how late a wake-up can be).
const IDLE_POLL: Duration = Duration::from_secs(1);

pub struct Resyncs<K: Resource<DynamicType = ()>> {
    kind: &'static str,
    every: Duration,
    /// Resyncs run while fewer than this many reconciles of the kind are running.
    below: usize,
    metrics: Arc<Metrics>,
    /// Where the [`TICK`] grid starts.
    origin: Instant,
    queue: Mutex<Queue<K>>,
}

/// Objects by the time their resync is due; `seq` keeps equal times apart.
struct Queue<K: Resource<DynamicType = ()>> {
    due: BTreeMap<(Instant, u64), ObjectRef<K>>,
    at: HashMap<ObjectRef<K>, (Instant, u64)>,
    seq: u64,
}

impl<K: Resource<DynamicType = ()> + Clone + Send + Sync + 'static> Resyncs<K> {
    /// The resyncs of `kind`, whose controller runs `slots` reconciles at a time; `every` is
    /// the interval `Context::resync` asks for.
    pub fn new(kind: &'static str, every: Duration, slots: u16, metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Resyncs {
            kind,
            every,
            below: usize::from(slots / 2).max(1),
            metrics,
            origin: Instant::now(),
            queue: Mutex::new(Queue { due: BTreeMap::new(), at: HashMap::new(), seq: 0 }),
        })
    }

    /// `reconcile`, with its resync requeue moved into this queue.
    pub fn around<C, F, Fut>(
        self: &Arc<Self>,
        mut reconcile: F,
    ) -> impl FnMut(Arc<K>, Arc<C>) -> futures::future::BoxFuture<'static, Result<Action>> + use<K, C, F, Fut>
    where
        C: Send + Sync + 'static,
        F: FnMut(Arc<K>, Arc<C>) -> Fut,
        Fut: Future<Output = Result<Action>> + Send + 'static,
    {
        let me = self.clone();
        move |obj, ctx| {
            let (me, key) = (me.clone(), ObjectRef::from_obj(obj.as_ref()));
            let run = reconcile(obj, ctx);
            Box::pin(async move {
                match run.await {
                    Ok(action) => Ok(me.after(key, action)),
                    Err(e) => {
                        // The error policy backs off; the resync waits for the next success.
                        me.forget(&key);
                        Err(e)
                    }
                }
            })
        }
    }

    /// `at`, or the first tick of the grid after it.
    fn on_tick(&self, at: Instant) -> Instant {
        let since = at.saturating_duration_since(self.origin).as_nanos();
        let tick = TICK.as_nanos();
        let ticks = since.div_ceil(tick);
        self.origin + Duration::from_nanos(u64::try_from(ticks * tick).unwrap_or(u64::MAX))
    }

    fn forget(&self, key: &ObjectRef<K>) {
        self.queue.lock().expect("resync queue lock").remove(key);
    }

    /// What the controller does after a reconcile of `key` that asked for `action`.
    fn after(&self, key: ObjectRef<K>, action: Action) -> Action {
        let mut queue = self.queue.lock().expect("resync queue lock");
        queue.remove(&key);
        if action == Action::requeue(self.every) {
            // Up to 10 % later, so a thousand objects created together spread their resyncs.
            let jitter = self.every.mul_f64(rand::rng().random_range(0.0..0.1));
            queue.insert(key, self.on_tick(Instant::now() + self.every + jitter));
            Action::await_change()
        } else {
            action
        }
    }

    /// The objects whose resync is due, one at a time, each when the controller has room: for
    /// `Controller::reconcile_on`. Objects no longer in `store` are dropped.
    pub fn due(self: &Arc<Self>, store: Store<K>) -> impl Stream<Item = ObjectRef<K>> + Send + 'static {
        futures::stream::unfold((self.clone(), store), |(me, store)| async move {
            loop {
                let head = me.queue.lock().expect("resync queue lock").due.first_key_value().map(|(k, _)| *k);
                let now = Instant::now();
                match head {
                    Some((at, _)) if at <= now => {}
                    Some((at, _)) => {
                        tokio::time::sleep_until(at.min(now + IDLE_POLL)).await;
                        continue;
                    }
                    None => {
                        tokio::time::sleep(IDLE_POLL).await;
                        continue;
                    }
                }
                while me.metrics.in_flight(me.kind) >= me.below {
                    tokio::time::sleep(SLOT_POLL).await;
                }
                let (next, overdue) = {
                    let mut queue = me.queue.lock().expect("resync queue lock");
                    let next = queue.pop_due(Instant::now());
                    (next, queue.due.range(..(Instant::now(), u64::MAX)).count())
                };
                match next {
                    Some(key) if store.get(&key).is_some() => {
                        me.metrics.resync(me.kind, overdue);
                        return Some((key, (me, store)));
                    }
                    // Deleted, or reconciled for another reason while waiting for a slot.
                    _ => continue,
                }
            }
        })
    }

    #[cfg(test)]
    fn queued(&self) -> Vec<ObjectRef<K>> {
        self.queue.lock().expect("resync queue lock").due.values().cloned().collect()
    }

    #[cfg(test)]
    fn due_times(&self) -> Vec<Instant> {
        self.queue.lock().expect("resync queue lock").due.keys().map(|(at, _)| *at).collect()
    }
}

impl<K: Resource<DynamicType = ()>> Queue<K> {
    fn insert(&mut self, key: ObjectRef<K>, at: Instant) {
        self.seq += 1;
        self.due.insert((at, self.seq), key.clone());
        self.at.insert(key, (at, self.seq));
    }

    fn remove(&mut self, key: &ObjectRef<K>) {
        if let Some(slot) = self.at.remove(key) {
            self.due.remove(&slot);
        }
    }

    fn pop_due(&mut self, now: Instant) -> Option<ObjectRef<K>> {
        let (&slot, _) = self.due.first_key_value().filter(|((at, _), _)| *at <= now)?;
        let key = self.due.remove(&slot)?;
        self.at.remove(&key);
        Some(key)
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;
    use kube::runtime::reflector;
    use kube::runtime::watcher;

    use super::*;
    use crate::api::Topic;
    use crate::error::Error;

    fn topic(name: &str) -> Topic {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "tributary.dev/v1alpha1", "kind": "Topic",
            "metadata": {"name": name, "namespace": "water"}, "spec": {}
        }))
        .expect("a topic")
    }

    const EVERY: Duration = Duration::from_secs(30);

    /// A reconcile that ends as `outcome` says, after the resyncs' wrapper.
    async fn reconciled(resyncs: &Arc<Resyncs<Topic>>, name: &str, outcome: Result<Action>) -> Result<Action> {
        let outcome = Mutex::new(Some(outcome));
        let mut run = resyncs.around(move |_: Arc<Topic>, _: Arc<()>| {
            let outcome = outcome.lock().unwrap().take().unwrap();
            async move { outcome }
        });
        run(Arc::new(topic(name)), Arc::new(())).await
    }

    #[tokio::test(start_paused = true)]
    async fn a_settled_object_leaves_the_scheduler_and_comes_back_one_interval_later() {
        let metrics = Arc::new(Metrics::default());
        let resyncs = Resyncs::<Topic>::new("Topic", EVERY, 16, metrics.clone());
        let action = reconciled(&resyncs, "t1", Ok(Action::requeue(EVERY))).await.unwrap();
        assert_eq!(action, Action::await_change(), "the controller's scheduler keeps no resync");
        assert_eq!(resyncs.queued(), [ObjectRef::from_obj(&topic("t1"))]);

        let (store, mut writer) = reflector::store();
        writer.apply_watcher_event(&watcher::Event::Apply(topic("t1")));
        let start = Instant::now();
        let mut due = Box::pin(resyncs.due(store));
        let next = due.next().await.expect("t1 is resynced");
        assert_eq!(next, ObjectRef::from_obj(&topic("t1")));
        let waited = start.elapsed();
        assert!(waited >= EVERY && waited <= EVERY.mul_f64(1.1) + IDLE_POLL, "resynced after {waited:?}");
        assert!(resyncs.queued().is_empty());
        assert!(metrics.encode().contains("tributary_resyncs_total{kind=\"Topic\"} 1"));
    }

    #[tokio::test(start_paused = true)]
    async fn resyncs_fall_due_on_a_one_second_grid_and_those_of_one_tick_are_handed_over_together() {
        let resyncs = Resyncs::<Topic>::new("Topic", EVERY, 64, Arc::new(Metrics::default()));
        let (store, mut writer) = reflector::store();
        // A hundred Topics settled over a second and a half, as a resync of them spreads out.
        for i in 0..100 {
            let name = format!("t{i}");
            writer.apply_watcher_event(&watcher::Event::Apply(topic(&name)));
            reconciled(&resyncs, &name, Ok(Action::requeue(EVERY))).await.unwrap();
            tokio::time::advance(Duration::from_millis(15)).await;
        }
        let times: std::collections::BTreeSet<Instant> = resyncs.due_times().into_iter().collect();
        for at in &times {
            assert_eq!(at.duration_since(resyncs.origin).as_nanos() % TICK.as_nanos(), 0, "{at:?} is on the grid");
        }
        // 1.5 s of settling plus up to 10 % jitter (3 s): at most 6 distinct ticks, not 100 times.
        assert!(times.len() <= 6, "{} distinct due times", times.len());

        let mut due = Box::pin(resyncs.due(store));
        let mut handed = Vec::new();
        for _ in 0..100 {
            due.next().await.expect("every Topic is resynced");
            handed.push(Instant::now());
        }
        let distinct: std::collections::BTreeSet<Instant> = handed.into_iter().collect();
        assert_eq!(distinct, times, "each tick's resyncs are handed over at that tick, together");
    }

    #[tokio::test(start_paused = true)]
    async fn other_endings_take_the_object_out_of_the_queue() {
        let resyncs = Resyncs::<Topic>::new("Topic", EVERY, 16, Arc::new(Metrics::default()));
        reconciled(&resyncs, "t1", Ok(Action::requeue(EVERY))).await.unwrap();
        reconciled(&resyncs, "t2", Ok(Action::requeue(EVERY))).await.unwrap();
        // A spec Kafka refused waits for a change; a retry keeps its own time; an error backs off.
        let retry = Action::requeue(Duration::from_secs(15));
        assert_eq!(reconciled(&resyncs, "t1", Ok(retry.clone())).await.unwrap(), retry);
        assert_eq!(reconciled(&resyncs, "t2", Ok(Action::await_change())).await.unwrap(), Action::await_change());
        reconciled(&resyncs, "t3", Ok(Action::requeue(EVERY))).await.unwrap();
        assert!(reconciled(&resyncs, "t3", Err(Error::Missing("spec"))).await.is_err());
        assert!(resyncs.queued().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_due_resync_waits_while_half_the_slots_are_busy_and_deleted_objects_are_dropped() {
        let metrics = Arc::new(Metrics::default());
        let resyncs = Resyncs::<Topic>::new("Topic", EVERY, 4, metrics.clone());
        for name in ["gone", "t1"] {
            reconciled(&resyncs, name, Ok(Action::requeue(EVERY))).await.unwrap();
        }
        let (store, mut writer) = reflector::store();
        writer.apply_watcher_event(&watcher::Event::Apply(topic("t1")));
        // Two of the four slots are busy (new work) until a minute from now.
        let busy = [metrics.reconcile("Topic"), metrics.reconcile("Topic")];
        let start = Instant::now();
        let mut due = Box::pin(resyncs.due(store));
        let release = async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            drop(busy);
            std::future::pending::<()>().await
        };
        let next = tokio::select! {
            next = due.next() => next,
            _ = release => unreachable!(),
        };
        assert_eq!(next, Some(ObjectRef::from_obj(&topic("t1"))), "the deleted Topic is not handed over");
        assert!(start.elapsed() >= Duration::from_secs(60), "it waited for the slots: {:?}", start.elapsed());
        let more = tokio::time::timeout(EVERY * 4, due.next()).await;
        assert!(more.is_err(), "nothing else is handed over: {more:?}");
        assert!(resyncs.queued().is_empty());
    }
}
