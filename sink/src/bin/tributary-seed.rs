//! `tributary-seed`: produces the seeds' datasets into a tenant's topic, with the tenant's
//! own credentials, at a chosen rate, optionally mixing in malformed records.
//!
//!     tributary-seed --dataset water --topic water.data --count 100000 [--rate 5000]
//!                    [--malformed-every 1000] [--run demo] [--start 0]
//!
//! Connection: `KAFKA_BOOTSTRAP`, `KAFKA_USERNAME`, `KAFKA_PASSWORD`, and optionally
//! `KAFKA_SECURITY_PROTOCOL`, `KAFKA_SASL_MECHANISM`, `KAFKA_CA_PEM` (the values of the
//! tenant's `tributary-credentials` Secret). Prints progress every second.

use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use tributary_sink::seed::{Dataset, is_malformed, malformed, record};

struct Args {
    dataset: Dataset,
    topic: String,
    count: u64,
    rate: u64,
    malformed_every: u64,
    run: String,
    start: u64,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        dataset: Dataset::Water,
        topic: String::new(),
        count: 1000,
        rate: 0,
        malformed_every: 0,
        run: "seed".into(),
        start: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        let number = |v: String| v.parse::<u64>().map_err(|_| format!("{flag}: {v:?} is not a number"));
        match flag.as_str() {
            "--dataset" => args.dataset = value()?.parse()?,
            "--topic" => args.topic = value()?,
            "--count" => args.count = number(value()?)?,
            "--rate" => args.rate = number(value()?)?,
            "--malformed-every" => args.malformed_every = number(value()?)?,
            "--run" => args.run = value()?,
            "--start" => args.start = number(value()?)?,
            "-h" | "--help" => {
                return Err(include_str!("tributary-seed.rs").lines().take(9).collect::<Vec<_>>().join("\n"));
            }
            other => return Err(format!("unknown argument {other}; see --help")),
        }
    }
    if args.topic.is_empty() {
        return Err("--topic is required (the tenant's Kafka topic, e.g. water.data)".into());
    }
    Ok(args)
}

#[tokio::main]
async fn main() {
    if let Err(e) = produce().await {
        eprintln!("tributary-seed: {e}");
        std::process::exit(1);
    }
}

async fn produce() -> Result<(), String> {
    let args = parse()?;
    let env = |n: &str| {
        std::env::var(n).map_err(|_| format!("{n} is not set (from the tenant's tributary-credentials Secret)"))
    };
    let mut config = ClientConfig::new();
    // TLS and the login from the bundle: kafka.security.protocol, kafka.ca.crt (absent: the
    // system's CAs), kafka.sasl.mechanism.
    if let Ok(ca) = std::env::var("KAFKA_CA_PEM") {
        config.set("ssl.ca.pem", ca);
    }
    let producer: FutureProducer = config
        .set("bootstrap.servers", env("KAFKA_BOOTSTRAP")?)
        .set("security.protocol", std::env::var("KAFKA_SECURITY_PROTOCOL").unwrap_or("SASL_PLAINTEXT".into()))
        .set("sasl.mechanism", std::env::var("KAFKA_SASL_MECHANISM").unwrap_or("SCRAM-SHA-512".into()))
        .set("sasl.username", env("KAFKA_USERNAME")?)
        .set("sasl.password", env("KAFKA_PASSWORD")?)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "20")
        .create()
        .map_err(|e| format!("cannot create the producer: {e}"))?;
    let started = Instant::now();
    let mut last_report = Instant::now();
    let mut pending = futures::stream::FuturesUnordered::new();
    let (mut sent, mut bad) = (0u64, 0u64);
    use futures::StreamExt;
    for i in args.start..args.start + args.count {
        let r = if is_malformed(i, args.malformed_every) {
            bad += 1;
            malformed(args.dataset, &args.run, i)
        } else {
            record(args.dataset, &args.run, i)
        };
        let producer = producer.clone();
        let topic = args.topic.clone();
        // Spawned, so the record goes out now: a send future does nothing until polled, and
        // these are polled only once 10,000 wait (a paced run under that went all at the end).
        pending.push(tokio::spawn(async move {
            let mut backoff = Duration::from_millis(100);
            loop {
                let out = FutureRecord::to(&topic).key(&r.key).payload(&r.value);
                match producer.send(out, Duration::from_secs(30)).await {
                    Ok(_) => return,
                    Err((e, _)) => {
                        eprintln!("tributary-seed: record {i}: {e}; retrying");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                    }
                }
            }
        }));
        sent += 1;
        while pending.len() >= 10_000 {
            pending.next().await;
        }
        if args.rate > 0 {
            let due = started + Duration::from_secs_f64(sent as f64 / args.rate as f64);
            tokio::time::sleep_until(due.into()).await;
        }
        if last_report.elapsed() >= Duration::from_secs(1) {
            eprintln!("tributary-seed: {sent}/{} sent ({bad} malformed)", args.count);
            last_report = Instant::now();
        }
    }
    while pending.next().await.is_some() {}
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "tributary-seed: {sent} records ({bad} malformed) acknowledged by {} in {secs:.1} s ({:.0}/s)",
        args.topic,
        sent as f64 / secs
    );
    Ok(())
}
