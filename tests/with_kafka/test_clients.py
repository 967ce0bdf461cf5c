"""The Kafka clients' reader, on a real broker, with each client."""

import time

from streamal.connectors.kafka.clients import open_client, read_to_end


def test_a_reader_returns_what_is_there_without_waiting_out_its_timeout(topics):
    # a changelog shorter than a batch is read at every start: waiting out the
    # poll's timeout there was most of the confluent daemon's start-up
    topics.produce(topics.changelog, [{"n": i} for i in range(3)])
    client = open_client(topics.client, topics.bootstrap, "test-reader")
    reader = client.reader()
    try:
        reader.assign(topics.changelog, reader.partitions(topics.changelog))
        started = time.monotonic()
        got = []
        while len(got) < 3 and time.monotonic() - started < 60:
            got += [m for msgs in reader.poll(30).values() for m in msgs]
        assert [m.value for m in got] == [b'{"n": 0}', b'{"n": 1}', b'{"n": 2}']
        assert time.monotonic() - started < 20  # not one poll's whole 30 s

        reader.seek(topics.changelog, 0, 1)
        rest = read_to_end(reader, topics.changelog, [0], quiet=30)
        assert [m.value for m in rest] == [b'{"n": 1}', b'{"n": 2}']
    finally:
        reader.close()
        client.close()
