"""The seeds' approach (shared/seeds/003_*: kassandra.py), written for the benchmark: a Kafka
consumer that inserts one row per record into Cassandra, synchronously, with the usual Python
clients (confluent-kafka, cassandra-driver). Reads RECORDS records of the water dataset from
KAFKA_TOPIC with a fresh group and prints {"records", "seconds", "cpu_seconds",
"peak_rss_kib"} as JSON; seconds count from the first record to the last insert."""

import json
import os
import resource
import ssl
import sys
import time
from datetime import datetime, timezone

from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import Cluster
from confluent_kafka import Consumer

records = int(os.environ["RECORDS"])
host, port = os.environ["CASSANDRA_CONTACT"].rsplit(":", 1)
# TLS to both, as the sink has it, with the stack's CA and the server's name checked.
tls = ssl.create_default_context(cafile=os.environ["CASSANDRA_CA_FILE"])
cluster = Cluster([host], port=int(port), auth_provider=PlainTextAuthProvider(
    os.environ["CASSANDRA_USERNAME"], os.environ["CASSANDRA_PASSWORD"]),
    ssl_context=tls, ssl_options={"server_hostname": host})
session = cluster.connect()
insert = session.prepare(
    f"INSERT INTO {os.environ['CASSANDRA_TABLE']} "
    "(station, ts, ph, turbidity, temperature, conductivity) VALUES (?, ?, ?, ?, ?, ?)")

consumer = Consumer({
    "bootstrap.servers": os.environ["KAFKA_BOOTSTRAP"],
    "security.protocol": "SASL_SSL",
    "ssl.ca.location": os.environ["KAFKA_CA_FILE"],
    "sasl.mechanism": "SCRAM-SHA-512",
    "sasl.username": os.environ["KAFKA_USERNAME"],
    "sasl.password": os.environ["KAFKA_PASSWORD"],
    "group.id": os.environ["KAFKA_GROUP"],
    "auto.offset.reset": "earliest",
})
consumer.subscribe([os.environ["KAFKA_TOPIC"]])

done, start = 0, None
while done < records:
    msg = consumer.poll(1.0)
    if msg is None:
        continue
    if msg.error():
        print(msg.error(), file=sys.stderr)
        continue
    if start is None:
        start = time.monotonic()
    r = json.loads(msg.value())
    reading = r["reading"]
    session.execute(insert, (
        r["station"], datetime.fromtimestamp(r["ts"] / 1000, tz=timezone.utc),
        reading["ph"], reading["turbidity"], reading["temperature"], r["conductivity"]))
    done += 1

seconds = time.monotonic() - start
usage = resource.getrusage(resource.RUSAGE_SELF)
consumer.close()
cluster.shutdown()
print(json.dumps({"records": done, "seconds": seconds, "cpu_seconds": usage.ru_utime + usage.ru_stime,
                  "peak_rss_kib": usage.ru_maxrss}))
