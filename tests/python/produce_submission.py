"""Produce Submissions to the intake topic with Confluent's own Python client.

This is what a producer inside the company does: Avro through the schema registry
(Confluent wire format), key = customer id. Used by the Rust test python_client.rs.

usage: produce_submission.py BROKERS REGISTRY_URL SCHEMA_FILE COUNT [TOPIC]
"""

import sys

from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

TOPIC = "messages.accepted"


def submission(i):
    return {
        "message_id": f"py-{i}",
        "customer_id": "acme",
        "client_id": None,
        "client_message_id": f"order-{i}",
        "channel": "kakao",
        "to": "01098765432",
        "from": "15880000",
        "text": f"(광고) 주문 {i} 배송 시작\n무료수신거부 080-000-0000",
        "subject": None,
        "bill_code": "BILL-7",
        "priority": "bulk",
        "template_code": "TPL-DELIVERY",
        "fallback": {"channel": "lms", "text": "배송이 시작되었습니다", "subject": "배송"},
        "attachments": [],
        "expires_at": 1_900_000_000_000,
        "metadata": {"campaign": "fall", "i": str(i)},
        "accepted_at": 1_800_000_000_000 + i,
    }


def main():
    brokers, registry_url, schema_file, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    topic = sys.argv[5] if len(sys.argv) > 5 else TOPIC
    with open(schema_file, encoding="utf-8") as f:
        schema = f.read()
    registry = SchemaRegistryClient({"url": registry_url})
    serialize = AvroSerializer(registry, schema)
    producer = Producer({"bootstrap.servers": brokers, "enable.idempotence": True})
    failures = []

    def delivered(err, msg):
        if err is not None:
            failures.append(err)

    for i in range(count):
        value = serialize(submission(i), SerializationContext(topic, MessageField.VALUE))
        producer.produce(topic, key=b"acme", value=value, on_delivery=delivered)
    remaining = producer.flush(30)
    if remaining or failures:
        print(f"not delivered: {remaining} pending, errors {failures}", file=sys.stderr)
        sys.exit(1)
    print(f"produced {count}")


if __name__ == "__main__":
    main()
