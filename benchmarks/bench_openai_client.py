"""Throughput of the backend=openai client itself: 1,000 requests against a zero-latency server.

Why: on a real endpoint the server's generation time dominates; what this client adds (JSON,
HTTP, the retry wrapper, the thread hand-off, base64 images) must stay far below it, so that
``max_concurrency`` requests really are in flight. The server here answers every request at once
with a fixed completion, in its own process (an asyncio HTTP/1.1 keep-alive server on
127.0.0.1), so client and server do not share a GIL.

Two figures, each over ``--requests`` requests (default 1,000):

- ``http``: the request layer alone (``ChatClient.post_json``, a payload carrying a 840x840
  PNG data URL built once): JSON, HTTP, connection pool, retry wrapper;
- ``backend``: the whole ``OpenAIVLM.generate_stream`` path, one query per request, each query's
  image (640x480, photo-like) resized to the 840 frame and encoded (PNG, or ``--format jpeg``) in
  the client: the encoding, not HTTP, bounds this one (with N sampled answers a query's frame is
  encoded once for its N answers).

The client process's CPU seconds are printed beside the wall time (steadier on a shared machine).

    python benchmarks/bench_openai_client.py
    python benchmarks/bench_openai_client.py --requests 2000 --concurrency 128 --format jpeg
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

REPLY = json.dumps({"id": "x", "object": "chat.completion", "model": "bench",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": "<answer>[]</answer>"},
                                 "finish_reason": "stop"}]}).encode()
MODELS = json.dumps({"object": "list", "data": [{"id": "bench", "object": "model"}]}).encode()


def _response(body: bytes) -> bytes:
    return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode() + b"\r\n\r\n" + body)


async def _serve_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            if length:
                await reader.readexactly(length)
            writer.write(_response(MODELS if head.startswith(b"GET") else REPLY))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


def _server_process(port: int, ready: multiprocessing.synchronize.Event) -> None:  # type: ignore[name-defined]
    async def main() -> None:
        server = await asyncio.start_server(_serve_connection, "127.0.0.1", port, limit=1 << 24, backlog=1024)
        ready.set()
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bench_http(url: str, requests: int, concurrency: int, data_url: str) -> float:
    from reasonseg_x.star.generation.openai_client import ChatClient, choice_texts

    payload = {"model": "bench", "n": 1, "max_tokens": 16, "temperature": 0.0, "messages": [
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": data_url}},
                                     {"type": "text", "text": "find the cat"}]}]}

    async def main() -> float:
        client = ChatClient(url, max_concurrency=concurrency)
        await client.post_json("chat/completions", payload, parse=choice_texts)  # warm the pool
        started = time.perf_counter()
        await asyncio.gather(*(client.post_json("chat/completions", payload, parse=choice_texts)
                               for _ in range(requests)))
        elapsed = time.perf_counter() - started
        await client.aclose()
        return elapsed

    return asyncio.run(main())


def bench_backend(url: str, requests: int, concurrency: int, image_format: str) -> float:
    import numpy as np
    from PIL import Image

    from reasonseg_x.star.generation.openai_backend import OpenAIVLM

    rng = np.random.default_rng(0)
    # a smooth, photo-like 640x480 image (noise would make PNG unrealistically large)
    y, x = np.mgrid[0:480, 0:640]
    base = np.stack([(x * 0.4) % 256, (y * 0.5) % 256, ((x + y) * 0.2) % 256], -1)
    image = Image.fromarray((base + rng.normal(0, 3, base.shape)).clip(0, 255).astype(np.uint8))
    vlm = OpenAIVLM(url, max_concurrency=concurrency, image_format=image_format)
    try:
        list(vlm.generate_stream([image], ["warm up"]))
        started = time.perf_counter()
        done = sum(1 for _ in vlm.generate_stream([image] * requests, [f"query {i}" for i in range(requests)]))
        elapsed = time.perf_counter() - started
    finally:
        vlm.close()
    assert done == requests
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--format", choices=("png", "jpeg"), default="png")
    args = parser.parse_args()

    from PIL import Image

    from reasonseg_x.star.generation.openai_backend import image_data_url

    port = _free_port()
    ready = multiprocessing.Event()
    server = multiprocessing.Process(target=_server_process, args=(port, ready), daemon=True)
    server.start()
    try:
        if not ready.wait(30):
            raise SystemExit("the zero-latency server did not start")
        url = f"http://127.0.0.1:{port}/v1"
        data_url = image_data_url(Image.new("RGB", (640, 480), (90, 120, 150)), fmt=args.format)
        cpu = time.process_time()
        http_s = bench_http(url, args.requests, args.concurrency, data_url)
        http_cpu, cpu = time.process_time() - cpu, time.process_time()
        backend_s = bench_backend(url, args.requests, args.concurrency, args.format)
        backend_cpu = time.process_time() - cpu
    finally:
        server.terminate()
        server.join(5)
    print(f"zero-latency server, {args.requests} requests, max_concurrency {args.concurrency}, "
          f"{multiprocessing.cpu_count()} cores")
    print("(client process CPU seconds beside wall seconds: steadier on a shared machine)")
    print(f"http    (request layer, prebuilt payload):      {http_s:6.2f} s wall {http_cpu:6.2f} s CPU "
          f"{args.requests / http_s:7.0f} requests/s")
    print(f"backend (generate_stream, one {args.format} frame per query): {backend_s:6.2f} s wall {backend_cpu:6.2f} s CPU "
          f"{args.requests / backend_s:7.0f} requests/s")


if __name__ == "__main__":
    main()
