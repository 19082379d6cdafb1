//! Coalesces the same admin call from concurrent reconciles into one request to Kafka.
//!
//! Kafka's CreateTopics and DescribeConfigs take many topics per request, and a request for
//! a hundred topics costs about what one for a single topic does. While one call is out,
//! the requests that arrive wait in a queue; the next call carries all of them (up to
//! `max`). Nothing waits on a timer: a lone request goes out at once, so a single reconcile
//! is as fast as before and a thousand Topics applied together need a few dozen calls.
//! (A small loop on a tokio channel; no maintained crate does just this.)

use std::future::Future;

use tokio::sync::{mpsc, oneshot};

type Job<Req, Resp> = (Req, oneshot::Sender<Resp>);

pub struct Batcher<Req, Resp> {
    jobs: mpsc::UnboundedSender<Job<Req, Resp>>,
}

impl<Req: Send + 'static, Resp: Send + 'static> Batcher<Req, Resp> {
    /// Starts the batching loop on the current tokio runtime. `call` gets the requests of
    /// one batch and answers each, in order.
    pub fn spawn<F, Fut>(max: usize, call: F) -> Self
    where
        F: Fn(Vec<Req>) -> Fut + Send + 'static,
        Fut: Future<Output = Vec<Resp>> + Send,
    {
        let (jobs, mut queue) = mpsc::unbounded_channel::<Job<Req, Resp>>();
        tokio::spawn(async move {
            while let Some(first) = queue.recv().await {
                let mut batch = vec![first];
                while batch.len() < max {
                    match queue.try_recv() {
                        Ok(job) => batch.push(job),
                        Err(_) => break,
                    }
                }
                let (requests, replies): (Vec<Req>, Vec<_>) = batch.into_iter().unzip();
                let answers = call(requests).await;
                debug_assert_eq!(answers.len(), replies.len(), "one answer per request");
                for (reply, answer) in replies.into_iter().zip(answers) {
                    let _ = reply.send(answer); // the reconcile may have been cancelled
                }
            }
        });
        Batcher { jobs }
    }

    /// Queues `request` and waits for its answer; `None` when the loop is gone (shutdown).
    pub async fn submit(&self, request: Req) -> Option<Resp> {
        let (reply, answer) = oneshot::channel();
        self.jobs.send((request, reply)).ok()?;
        answer.await.ok()
    }
}

impl<Resp: Clone + Send + 'static> Batcher<(), Resp> {
    /// One call shared by every request waiting at once, for a call that takes no argument
    /// (all topics' names, all consumer groups): a hundred Tenants checking their prefixes
    /// together cost a few calls instead of a hundred. A request queued while a call is out
    /// waits for the next one, so no answer predates its request.
    pub fn shared<F, Fut>(call: F) -> Self
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: Future<Output = Resp> + Send,
    {
        Batcher::spawn(usize::MAX, move |requests: Vec<()>| {
            let answer = call();
            async move { vec![answer.await; requests.len()] }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[tokio::test]
    async fn concurrent_requests_share_calls_and_each_gets_its_own_answer() {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let seen = calls.clone();
        let batcher = Arc::new(Batcher::spawn(10, move |requests: Vec<u32>| {
            seen.lock().unwrap().push(requests.len());
            async move {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                requests.into_iter().map(|r| r * 2).collect()
            }
        }));
        let answers = futures::future::join_all((0..25u32).map(|i| {
            let b = batcher.clone();
            async move { b.submit(i).await }
        }))
        .await;
        assert_eq!(answers, (0..25u32).map(|i| Some(i * 2)).collect::<Vec<_>>());
        let calls = calls.lock().unwrap().clone();
        assert_eq!(calls.iter().sum::<usize>(), 25);
        assert!(calls.len() < 25, "requests were coalesced: {calls:?}");
        assert!(calls.iter().all(|n| *n <= 10), "at most max per call: {calls:?}");
    }

    #[tokio::test]
    async fn a_lone_request_goes_out_at_once() {
        // Were it waiting for a full batch, this would never answer.
        let batcher = Batcher::spawn(100, |requests: Vec<&'static str>| async move { requests });
        let answer = tokio::time::timeout(std::time::Duration::from_secs(10), batcher.submit("t")).await;
        assert_eq!(answer, Ok(Some("t")));
    }

    #[tokio::test]
    async fn a_shared_call_answers_everyone_waiting_and_never_with_an_older_answer() {
        let calls = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let counter = calls.clone();
        let batcher = Arc::new(Batcher::shared(move || {
            let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            async move {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                n
            }
        }));
        let answers = futures::future::join_all((0..50).map(|_| {
            let b = batcher.clone();
            async move { b.submit(()).await.unwrap() }
        }))
        .await;
        let made = calls.load(std::sync::atomic::Ordering::SeqCst);
        assert!(made <= 2, "50 waiting requests shared {made} calls");
        assert!(answers.iter().all(|a| *a >= 1 && *a <= made), "{answers:?}");
        // A request made after those calls ended gets a new call's answer.
        assert_eq!(batcher.submit(()).await, Some(made + 1));
    }
}
