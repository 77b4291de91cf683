"""The tutorial programs' Python side, for running warren's programs against pika's.

Written for these tests (not a copy of the official programs): each subcommand declares what the
official Python program of that name declares today (durable quorum queues for hello,
task_queue and rpc_queue; the fanout, direct and topic exchanges), takes the same arguments
and prints the same lines, so a test can put it on either side of a warren program. It connects
to AMQP_URL, which the official programs would read as localhost.

    python3 pika_peer.py <program> [args...]
"""

import os
import sys

import pika

QUORUM = {"x-queue-type": "quorum"}


def channel():
    connection = pika.BlockingConnection(pika.URLParameters(os.environ.get("AMQP_URL", "amqp://localhost")))
    return connection, connection.channel()


def say(line):
    print(line, flush=True)


def send(args):
    connection, ch = channel()
    ch.queue_declare(queue="hello", durable=True, arguments=QUORUM)
    ch.basic_publish(exchange="", routing_key="hello", body="Hello World!")
    say(" [x] Sent 'Hello World!'")
    connection.close()


def receive(args):
    _, ch = channel()
    ch.queue_declare(queue="hello", durable=True, arguments=QUORUM)
    ch.basic_consume(queue="hello", on_message_callback=lambda c, m, p, b: say(f" [x] Received {b.decode()}"), auto_ack=True)
    say(" [*] Waiting for messages. To exit press CTRL+C")
    ch.start_consuming()


def new_task(args):
    connection, ch = channel()
    ch.queue_declare(queue="task_queue", durable=True, arguments=QUORUM)
    message = " ".join(args) or "Hello World!"
    ch.basic_publish(exchange="", routing_key="task_queue", body=message, properties=pika.BasicProperties(delivery_mode=2))  # persistent
    say(f" [x] Sent {message}")
    connection.close()


def worker(args):
    import time

    _, ch = channel()
    ch.queue_declare(queue="task_queue", durable=True, arguments=QUORUM)
    say(" [*] Waiting for messages. To exit press CTRL+C")

    def work(c, method, properties, body):
        say(f" [x] Received {body.decode()}")
        time.sleep(body.count(b"."))
        say(" [x] Done")
        c.basic_ack(delivery_tag=method.delivery_tag)

    ch.basic_qos(prefetch_count=1)
    ch.basic_consume(queue="task_queue", on_message_callback=work)
    ch.start_consuming()


def emit(exchange, kind, default_key):
    def program(args):
        connection, ch = channel()
        ch.exchange_declare(exchange=exchange, exchange_type=kind)
        if kind == "fanout":
            key, message = "", " ".join(args) or "info: Hello World!"
        else:
            key = args[0] if len(args) > 1 else default_key
            message = " ".join(args[1:]) or "Hello World!"
        ch.basic_publish(exchange=exchange, routing_key=key, body=message)
        say(f" [x] Sent {message}" if kind == "fanout" else f" [x] Sent {key}:{message}")
        connection.close()

    return program


def receive_logs_of(exchange, kind, usage):
    def program(args):
        _, ch = channel()
        ch.exchange_declare(exchange=exchange, exchange_type=kind)
        queue = ch.queue_declare(queue="", exclusive=True).method.queue
        if kind == "fanout":
            ch.queue_bind(exchange=exchange, queue=queue)
        else:
            if not args:
                sys.stderr.write(f"Usage: {sys.argv[0]} {usage}\n")
                sys.exit(1)
            for key in args:
                ch.queue_bind(exchange=exchange, queue=queue, routing_key=key)
        if kind == "fanout":
            line = lambda m, b: f" [x] {b.decode()}"
        else:
            line = lambda m, b: f" [x] {m.routing_key}:{b.decode()}"
        say(" [*] Waiting for logs. To exit press CTRL+C")
        ch.basic_consume(queue=queue, on_message_callback=lambda c, m, p, b: say(line(m, b)), auto_ack=True)
        ch.start_consuming()

    return program


def fib(n):
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


def rpc_server(args):
    _, ch = channel()
    ch.queue_declare(queue="rpc_queue", durable=True, arguments=QUORUM)

    def on_request(c, method, props, body):
        n = int(body)
        say(f" [.] fib({n})")
        c.basic_publish(exchange="", routing_key=props.reply_to, properties=pika.BasicProperties(correlation_id=props.correlation_id), body=str(fib(n)))
        c.basic_ack(delivery_tag=method.delivery_tag)

    ch.basic_qos(prefetch_count=1)
    ch.basic_consume(queue="rpc_queue", on_message_callback=on_request)
    say(" [x] Awaiting RPC requests")
    ch.start_consuming()


def rpc_client(args):
    import uuid

    connection, ch = channel()
    callback_queue = ch.queue_declare(queue="", exclusive=True).method.queue
    corr_id = str(uuid.uuid4())
    response = []
    ch.basic_consume(queue=callback_queue, on_message_callback=lambda c, m, p, b: p.correlation_id == corr_id and response.append(b), auto_ack=True)
    n = int(args[0]) if args else 30
    say(f" [x] Requesting fib({n})")
    ch.basic_publish(exchange="", routing_key="rpc_queue", properties=pika.BasicProperties(reply_to=callback_queue, correlation_id=corr_id), body=str(n))
    while not response:
        connection.process_data_events(time_limit=None)
    say(f" [.] Got {int(response[0])}")


PROGRAMS = {
    "send": send,
    "receive": receive,
    "new_task": new_task,
    "worker": worker,
    "emit_log": emit("logs", "fanout", ""),
    "receive_logs": receive_logs_of("logs", "fanout", ""),
    "emit_log_direct": emit("direct_logs", "direct", "info"),
    "receive_logs_direct": receive_logs_of("direct_logs", "direct", "[info] [warning] [error]"),
    "emit_log_topic": emit("topic_logs", "topic", "anonymous.info"),
    "receive_logs_topic": receive_logs_of("topic_logs", "topic", "[binding_key]..."),
    "rpc_server": rpc_server,
    "rpc_client": rpc_client,
}

if __name__ == "__main__":
    try:
        PROGRAMS[sys.argv[1]](sys.argv[2:])
    except KeyboardInterrupt:
        print("Interrupted", flush=True)
        sys.exit(0)
