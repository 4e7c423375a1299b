#!/usr/bin/env python3
"""Serving benchmark: `ohai serve` against llama.cpp's `llama-server` under concurrent load.

One run:
  1. builds `llama-server` (and `llama-bench`) from the pinned llama.cpp tree with ohai's
     CPU flags (llama_tools.py, build dir build/llama-tools, incremental);
  2. starts `python -m ohai serve --parallel P -t T -c C` and `llama-server -np P -kvu -t T -c C`
     on free loopback ports, same model, same threads, same total context: llama-server's
     `-c` is split between its slots unless `-kvu` (one KV buffer shared by all slots),
     which is how ohai's engine shares its `n_ctx` between parallel requests;
  3. for 1, 2, 4 and 8 concurrent clients, each client sends a stream of streaming
     /v1/chat/completions requests (mixed prompt lengths, 40-400 tokens; `max_tokens` 128;
     temperature 0, prompts that make the model write to max_tokens), the two servers
     alternating ABBA per concurrency level; measures aggregate completion tokens/s and
     time to first token (p50, p95), with completion tokens counted from the stream;
  4. prefix cache: TTFT of a request that repeats the ~400-token system prompt of the request
     before it, against one whose system prompt has the same length but a different first
     token (neither server can be told to bypass its cache in the same way, so both get this);
  5. `python -m ohai bench -p 0 -n 128` and `llama-bench -p 0 -n 128` (single-stream decode);
  6. prints tables with ratios (or JSON with --json), optionally a PNG (--plot).

This is a measurement, not a test: it never asserts timings and exits 0 unless something
failed to run. Servers listen on 127.0.0.1 only and are stopped at the end.
"""
from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import platform
import random
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NoReturn

sys.path.insert(0, str(Path(__file__).resolve().parent))  # llama_tools, also under `python -P`
import llama_tools  # noqa: E402

ROOT = llama_tools.ROOT
LOG_DIR = ROOT / "build" / "bench-serving"
HOST = "127.0.0.1"

TARGET_VS_LLAMA = 1.0     # ohai aggregate t/s / llama-server aggregate t/s, every concurrency
TARGET_SCALING = 1.4      # ohai 4 clients / ohai 1 client, aggregate t/s
TARGET_VS_BENCH = 0.95    # ohai 1-client streamed decode t/s / `ohai bench` tg128

# Prompt lengths (whole chat-templated prompt, tokens), cycled in this order. Both halves sum to
# 816 (mean 204), so every phase (a multiple of 4 requests from a multiple of 4) sees the same mix.
# 40 is about the shortest request for a story with a system message under the chat template.
PROMPT_LENGTHS = (40, 400, 144, 232, 72, 336, 112, 296)
SYSTEM_SHORT = "You are a helpful assistant."
INSTRUCTION = "Write a long, detailed story about {topic}. Use at least five paragraphs."
TOPICS = (
    "a lighthouse keeper", "the history of bread", "a journey to Mars", "a clockmaker's apprentice",
    "a village under the sea", "the last train of the night", "a dragon who collects maps",
    "a robot learning to paint", "two rival bakers", "a storm over the desert", "a forgotten library",
    "a detective in a floating city", "the first winter of a young wolf", "a violin that plays itself",
    "a garden on the moon", "an expedition to the North Pole", "a cat who runs a hotel",
    "a lost letter finding its way home", "a ship made of glass", "a mountain that moves at night",
    "a chef in a medieval castle", "a child who can talk to trees", "an old map and a buried treasure",
    "a city where it never stops raining", "a beekeeper and a mysterious queen", "a time-travelling postman",
    "a kite that carries messages", "a circus in the snow", "a painter who paints the future",
    "a fox and a crow who become friends", "a bridge between two kingdoms", "a scientist who shrinks",
)
FILLER = (
    "The harbor was quiet in the early morning, and the fishing boats rocked gently on the water.",
    "Old stone walls surrounded the town, covered with moss and small yellow flowers.",
    "Every evening the bells of the church rang seven times before the market closed.",
    "The road to the mountains was narrow, steep and full of sharp turns.",
    "In the library there were thousands of books, some of them older than the town itself.",
    "Children played near the river while their parents worked in the fields.",
    "The winter that year was long and cold, and the snow stayed until late spring.",
    "A small bakery on the corner sold warm bread, honey cakes and apple pies.",
    "The captain kept a journal in which he wrote down every storm he had survived.",
    "At night the sky was so clear that the stars seemed close enough to touch.",
    "The forest beyond the hills was dark and deep, and few people dared to enter it.",
    "Merchants came from distant lands with silk, spices and strange machines.",
    "The old clock in the town square had stopped at a quarter past three years ago.",
    "A narrow staircase led to a tower from which the whole valley could be seen.",
    "The farmers said that the rain would come early, and they were right.",
    "Lanterns hung along the streets and swayed in the cold wind from the sea.",
    "Nobody remembered who had built the bridge, but everybody used it every day.",
    "The teacher told stories about heroes, inventors and explorers of the past.",
    "On the hill stood a windmill whose sails turned slowly in the afternoon breeze.",
    "The letters were tied with a red ribbon and hidden under a loose floorboard.",
    "A traveller arrived one evening with a heavy bag and a worn-out pair of boots.",
    "The lake froze in December, and the whole village went skating on Sundays.",
    "Inside the workshop, tools of every size hung neatly on the wooden walls.",
    "The musicians played until midnight, and people danced in the square.",
    "Far away, beyond the sea, there was said to be an island made of white stone.",
    "The doctor walked from house to house with a small leather case.",
    "Every spring the swallows returned to the same nests under the roof.",
    "The path along the cliffs offered a view of the waves crashing on the rocks.",
    "The inn served hot soup, fresh cheese and a strong dark tea.",
    "Maps of the region were rare, and most of them were wrong.",
)
# The ~400-token system prompt of the prefix-cache test: rules of a made-up support desk.
PREFIX_RULES = (
    "Answer questions about the opening hours, the products and the services of the Riverside Hardware Store.",
    "The store is open from eight in the morning to six in the evening, Monday to Saturday.",
    "On Sundays and public holidays the store is closed, but the online shop stays available.",
    "Customers can return unused products within thirty days if they bring the receipt.",
    "Paint can be mixed to any colour at the paint counter; mixing takes about ten minutes.",
    "Keys are cut while the customer waits, except for security keys, which take two days.",
    "The garden section sells seeds, tools, soil, fertiliser and small trees.",
    "Delivery is free for orders above one hundred euros within twenty kilometres.",
    "Power tools can be rented by the day or by the week; a deposit is required.",
    "Staff members wear green aprons and can help customers find any product.",
    "Workshops for beginners take place on the first Saturday of every month.",
    "Always answer politely, briefly and in complete sentences.",
    "If you do not know the answer, say so and suggest calling the store.",
    "Never invent prices; tell the customer to check the price label or the website.",
    "Do not give advice about electrical installations; recommend a licensed electrician.",
    "When a customer complains, apologise first and then offer to help.",
    "Mention the loyalty card when a customer asks about discounts.",
    "The loyalty card gives five percent off every purchase and is free of charge.",
    "Gift cards are sold at the main counter and never expire.",
    "Parking is available behind the store, with spaces reserved for disabled customers.",
    "The store accepts cash, debit cards, credit cards and mobile payments.",
    "Large items can be picked up at the loading dock at the back of the building.",
    "The store has a small cafe next to the entrance that serves coffee and sandwiches.",
    "Children under twelve must be accompanied by an adult in the workshop area.",
    "Safety glasses must be worn in the wood cutting area at all times.",
    "Wood is cut to size for free for up to ten cuts per customer per day.",
    "Special orders usually arrive within one week, and the customer is called on arrival.",
    "Answer in English unless the customer writes in another language.",
    "Keep every answer under one hundred words unless the customer asks for more detail.",
    "Never share personal information about other customers or staff members.",
)
# Candidate first words for the prefix-cache prompts: one token each (checked at run time),
# so every variant of the system prompt has the same length.
FIRST_WORDS = ("Alpha", "Delta", "India", "Victor", "Hello", "Welcome", "Note", "Dear", "Today", "Please",
               "Rules", "Policy", "Guide", "Store", "Customer", "Summer", "Winter", "North", "South", "Green",
               "Blue", "Red", "Good", "Important", "General", "Basic", "Official", "Current", "New", "Main")
PREFIX_QUESTIONS = ("When does the store open on Saturday?", "Can I return a drill without a receipt?",
                    "Is delivery free for a small order?", "Do you cut keys?", "How long does paint mixing take?",
                    "Where can I park?", "Do gift cards expire?", "Can children join the workshops?")


# --------------------------------------------------------------------------- helpers

def die(msg: str) -> NoReturn:
    sys.exit(f"bench_serving: error: {msg}")


def log(msg: str) -> None:
    # Progress goes to stderr so that --json keeps stdout machine-readable.
    print(f"bench_serving: {msg}", file=sys.stderr, flush=True)


def tail_file(path: Path, n: int = 25) -> str:
    try:
        lines = path.read_text(errors="replace").rstrip().splitlines()
    except OSError:
        return "    (no log)"
    return "\n".join("    " + line for line in lines[-n:]) or "    (empty log)"


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100) like numpy's default; NaN for no values."""
    if not values:
        return math.nan
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def parse_json_output(stdout: str, what: str) -> Any:
    try:
        return llama_tools.last_json_document(stdout)
    except ValueError:
        die(f"{what}: no JSON found in its output:\n{stdout.strip()[-2000:] or '(empty)'}")


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (all its threads), from /proc; None when unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2:].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def machine_info() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        load = list(os.getloadavg())
    except OSError:
        load = []
    return {"cpu": cpu, "nproc": usable, "cpu_count": os.cpu_count(), "os": platform.platform(),
            "python": platform.python_version(), "loadavg_at_start": load}


# --------------------------------------------------------------------------- ohai (this interpreter's)

def import_ohai() -> Any:
    try:
        import ohai
    except ImportError as e:
        die(f"cannot import ohai with {sys.executable} ({e}); install it (make install) or set PYTHONPATH")
    return ohai


def ohai_env() -> dict[str, str]:
    """Environment for `python -m ohai` children: the very ohai this process imported."""
    pkg_parent = str(Path(import_ohai().__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = pkg_parent + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def ohai_cmd(*args: str) -> list[str]:
    # -P: the current directory must not decide which ohai runs; PYTHONPATH (ohai_env) does.
    return [sys.executable, "-P", "-m", "ohai", *args]


# --------------------------------------------------------------------------- prompts

Message = dict[str, str]


class PromptFactory:
    """Deterministic chat prompts of a given token length (measured with the model's tokenizer)."""

    def __init__(self, model: Path) -> None:
        ohai = import_ohai()
        self._m = ohai.Model(str(model), vocab_only=True)

    def n_tokens(self, messages: list[Message]) -> int:
        text = self._m.apply_chat_template(messages, add_assistant=True)
        return len(self._m.tokenize(text, add_special=True, parse_special=True))

    def _fit(self, build: Callable[[int], list[Message]], n_words: int, target: int) -> list[Message]:
        """The longest build(k), k <= n_words, whose length is <= target (at least build(0))."""
        lo, hi = 0, n_words
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.n_tokens(build(mid)) <= target:
                lo = mid
            else:
                hi = mid - 1
        return build(lo)

    def story(self, target: int, key: int) -> list[Message]:
        """A request to write a long story; background notes pad it to `target` tokens."""
        rng = random.Random(key)
        topic = TOPICS[key % len(TOPICS)]
        sentences = list(FILLER)
        rng.shuffle(sentences)
        words = " ".join(sentences * 3).split()
        head = INSTRUCTION.format(topic=topic)

        def build(k: int) -> list[Message]:
            user = head if k == 0 else f"{head}\n\nBackground notes: {' '.join(words[:k])}"
            return [{"role": "system", "content": SYSTEM_SHORT}, {"role": "user", "content": user}]

        return self._fit(build, len(words), target)

    def first_words(self) -> list[str]:
        return [w for w in FIRST_WORDS if len(self._m.tokenize(w, add_special=False)) == 1]

    def shared_system(self, target: int) -> str:
        """The ~`target`-token system prompt body (without its first word)."""
        words = " ".join(PREFIX_RULES * 2).split()

        def build(k: int) -> list[Message]:
            return [{"role": "system", "content": "Alpha. " + " ".join(words[:k])},
                    {"role": "user", "content": PREFIX_QUESTIONS[0]}]

        return self._fit(build, len(words), target)[0]["content"][len("Alpha"):]

    def close(self) -> None:
        self._m.close()


# --------------------------------------------------------------------------- one streamed request

@dataclass
class RequestResult:
    server: str
    ok: bool
    error: str | None = None
    prompt_tokens_target: int = 0
    prompt_tokens: int | None = None           # from the stream's usage, when sent
    cached_tokens: int | None = None           # prompt tokens served from the server's cache, when sent
    completion_tokens: int = 0                 # counted from the stream (see tokens_source)
    tokens_source: str = ""                    # "usage" (the stream's usage chunk) or "chunks"
    content_chunks: int = 0
    usage_completion_tokens: int | None = None
    finish_reason: str | None = None
    t_start: float = 0.0                       # perf_counter seconds
    t_first: float | None = None               # first non-empty content delta
    t_last: float | None = None                # last non-empty content delta
    t_end: float = 0.0                         # `data: [DONE]` (or the end of the stream)
    max_gap_s: float = 0.0                     # longest wait between two content deltas (stalls)

    @property
    def ttft(self) -> float | None:
        return None if self.t_first is None else self.t_first - self.t_start

    @property
    def decode_tps(self) -> float | None:
        """Streamed tokens/s after the first token: (tokens - 1) decode steps over first -> last."""
        if self.t_first is None or self.t_last is None or self.completion_tokens < 2:
            return None
        span = self.t_last - self.t_first
        return (self.completion_tokens - 1) / span if span > 0 else None


def _cached_tokens(obj: dict[str, Any]) -> int | None:
    usage = obj.get("usage") or {}
    details = usage.get("prompt_tokens_details") or {}
    for v in (details.get("cached_tokens"), usage.get("cached_prompt_tokens"),
              (obj.get("timings") or {}).get("cache_n")):
        if isinstance(v, int):
            return v
    return None


def stream_chat(server: Server, messages: list[Message], max_tokens: int, timeout: float,
                prompt_tokens_target: int = 0, extra: dict[str, Any] | None = None) -> RequestResult:
    """One streaming /v1/chat/completions request, timed on this thread."""
    body = {"model": server.model_id, "messages": messages, "max_tokens": max_tokens, "temperature": 0,
            "stream": True, "stream_options": {"include_usage": True}, **(extra or {})}
    payload = json.dumps(body).encode()
    res = RequestResult(server=server.name, ok=False, prompt_tokens_target=prompt_tokens_target)
    res.t_start = time.perf_counter()
    conn = http.client.HTTPConnection(HOST, server.port, timeout=timeout)
    try:
        conn.request("POST", "/v1/chat/completions", body=payload,
                     headers={"Content-Type": "application/json", "Accept": "text/event-stream"})
        resp = conn.getresponse()
        if resp.status != 200:
            res.error = f"HTTP {resp.status}: {resp.read(500).decode(errors='replace').strip()}"
            return res
        done = False
        deadline = res.t_start + timeout
        while True:
            raw = resp.readline()
            if not raw:
                break
            if time.perf_counter() > deadline:
                res.error = f"request took longer than {timeout:.0f} s (--request-timeout); abandoned"
                return res
            line = raw.decode("utf-8", errors="replace").strip()
            if not line.startswith("data:"):
                continue  # blank separators, comments, `event:` lines
            data = line[5:].strip()
            if data == "[DONE]":
                done = True
                break
            try:
                obj = json.loads(data)
            except json.JSONDecodeError:
                res.error = f"bad SSE data: {data[:200]}"
                return res
            if "error" in obj and not obj.get("choices"):
                res.error = f"error event: {json.dumps(obj['error'])[:300]}"
                return res
            for choice in obj.get("choices") or []:
                delta = choice.get("delta") or {}
                if delta.get("content"):
                    now = time.perf_counter()
                    if res.t_first is None:
                        res.t_first = now
                    elif res.t_last is not None:
                        res.max_gap_s = max(res.max_gap_s, now - res.t_last)
                    res.t_last = now
                    res.content_chunks += 1
                if choice.get("finish_reason"):
                    res.finish_reason = choice["finish_reason"]
            usage = obj.get("usage")
            if isinstance(usage, dict):
                if isinstance(usage.get("completion_tokens"), int):
                    res.usage_completion_tokens = usage["completion_tokens"]
                if isinstance(usage.get("prompt_tokens"), int):
                    res.prompt_tokens = usage["prompt_tokens"]
            cached = _cached_tokens(obj)
            if cached is not None:
                res.cached_tokens = cached
        res.t_end = time.perf_counter()
        if not done:
            res.error = "stream ended without `data: [DONE]`"
            return res
        if res.usage_completion_tokens is not None:
            res.completion_tokens, res.tokens_source = res.usage_completion_tokens, "usage"
        else:
            res.completion_tokens, res.tokens_source = res.content_chunks, "chunks"
        res.ok = True
        return res
    except (OSError, http.client.HTTPException) as e:
        res.error = f"{type(e).__name__}: {e}"
        return res
    finally:
        if not res.t_end:
            res.t_end = time.perf_counter()
        conn.close()


# --------------------------------------------------------------------------- servers

@dataclass
class Server:
    name: str
    cmd: list[str]
    env: dict[str, str] | None
    log_path: Path
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    startup_s: float = 0.0
    model_id: str = ""  # the model's name in the server's API (GET /v1/models)

    def start(self, port: int, ready_timeout: float) -> None:
        self.port = port
        cmd = [c.replace("{port}", str(port)) for c in self.cmd]
        self.cmd = cmd
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log(f"starting {self.name}: {shlex.join(cmd)} (log: {self.log_path})")
        t0 = time.perf_counter()
        with open(self.log_path, "wb") as logf:
            self.proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         env=self.env, start_new_session=True)
        deadline = t0 + ready_timeout
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode} before it was ready:\n"
                                   f"{tail_file(self.log_path)}")
            if self.healthy():
                self.startup_s = time.perf_counter() - t0
                self.model_id = self._model_id()
                log(f"{self.name} ready on {HOST}:{port} after {self.startup_s:.1f} s, model {self.model_id!r}")
                return
            time.sleep(0.25)
        raise RuntimeError(f"{self.name} not ready after {ready_timeout:.0f} s:\n{tail_file(self.log_path)}")

    def _model_id(self) -> str:
        text = self.get("/v1/models")
        try:
            return str(json.loads(text or "")["data"][0]["id"])
        except (ValueError, KeyError, IndexError, TypeError):
            raise RuntimeError(f"{self.name}: no model id in GET /v1/models: {(text or '(no answer)')[:300]}") from None

    def healthy(self) -> bool:
        conn = http.client.HTTPConnection(HOST, self.port, timeout=2)
        try:
            conn.request("GET", "/health")
            resp = conn.getresponse()
            resp.read()
            return resp.status == 200
        except (OSError, http.client.HTTPException):
            return False
        finally:
            conn.close()

    def get(self, path: str) -> str | None:
        conn = http.client.HTTPConnection(HOST, self.port, timeout=5)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            text = resp.read().decode(errors="replace")
            return text if resp.status == 200 else None
        except (OSError, http.client.HTTPException):
            return None
        finally:
            conn.close()

    def cpu_seconds(self) -> float | None:
        return None if self.proc is None else process_cpu_seconds(self.proc.pid)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        log(f"stopping {self.name} (pid {self.proc.pid})")
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            log(f"{self.name} did not stop after SIGTERM; killing it")
            self.proc.kill()
            self.proc.wait(timeout=15)


def make_servers(a: argparse.Namespace, model: Path, llama_server: Path | None) -> list[Server]:
    servers: list[Server] = []
    for name in a.servers:
        if name == "ohai":
            cmd = ohai_cmd("serve", "-m", str(model), "--host", HOST, "--port", "{port}",
                           "--parallel", str(a.parallel), "-t", str(a.threads), "-c", str(a.ctx),
                           *shlex.split(a.ohai_args))
            servers.append(Server("ohai", cmd, ohai_env(), LOG_DIR / "ohai-serve.log"))
        else:
            assert llama_server is not None
            # -kvu: one KV buffer of -c tokens shared by all slots, like ohai's engine (without it
            # each of the -np slots would get -c/np tokens). No web UI; /metrics like ohai.
            cmd = [str(llama_server), "-m", str(model), "--host", HOST, "--port", "{port}",
                   "-np", str(a.parallel), "-kvu", "-c", str(a.ctx), "-t", str(a.threads),
                   "-tb", str(a.threads), "--no-ui", "--metrics", *shlex.split(a.llama_server_args)]
            servers.append(Server("llama-server", cmd, None, LOG_DIR / "llama-server.log"))
    return servers


def start_all(servers: list[Server], ready_timeout: float) -> None:
    for s in servers:
        for attempt in range(3):
            try:
                s.start(free_port(), ready_timeout)
                break
            except RuntimeError as e:
                # Another process may have taken the port between free_port() and bind().
                if attempt == 2 or "in use" not in str(e).lower():
                    raise
                log(f"{s.name}: port taken, retrying")


# --------------------------------------------------------------------------- load phases

@dataclass
class Phase:
    server: str
    concurrency: int
    order: int                 # position in the run
    wall_s: float
    results: list[RequestResult]
    server_cpu_s: float | None
    other_cpu_s: dict[str, float | None]
    client_cpu_s: float             # this process (the load generator), all threads
    stopped_early: bool

    @property
    def ok(self) -> list[RequestResult]:
        return [r for r in self.results if r.ok]


def run_phase(server: Server, others: list[Server], prompts: list[tuple[list[Message], int]],
              concurrency: int, a: argparse.Namespace, order: int) -> Phase:
    """`concurrency` clients take requests from a shared list until it is empty or time is up."""
    lock = threading.Lock()
    queue = list(enumerate(prompts))
    results: list[RequestResult] = []
    deadline = time.perf_counter() + a.phase_timeout
    stopped = [False]

    def client() -> None:
        while True:
            with lock:
                if not queue:
                    return
                if time.perf_counter() > deadline:
                    stopped[0] = True
                    return
                _, (messages, n_prompt) = queue.pop(0)
            r = stream_chat(server, messages, a.max_tokens, a.request_timeout, n_prompt)
            with lock:
                results.append(r)

    cpu0 = server.cpu_seconds()
    other0 = {o.name: o.cpu_seconds() for o in others}
    client0 = time.process_time()
    threads = [threading.Thread(target=client, daemon=True) for _ in range(concurrency)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    client_cpu = time.process_time() - client0
    cpu1 = server.cpu_seconds()
    other = {o.name: (None if other0[o.name] is None or o.cpu_seconds() is None
                      else o.cpu_seconds() - other0[o.name]) for o in others}  # type: ignore[operator]
    if results:
        wall = max(r.t_end for r in results) - min(r.t_start for r in results)
    return Phase(server=server.name, concurrency=concurrency, order=order, wall_s=wall, results=results,
                 server_cpu_s=None if cpu0 is None or cpu1 is None else cpu1 - cpu0,
                 other_cpu_s=other, client_cpu_s=client_cpu, stopped_early=stopped[0])


@dataclass
class LevelStats:
    server: str
    concurrency: int
    requests: int
    errors: int
    completion_tokens: int
    tokens_per_request_mean: float
    finish_length: int              # requests that ran to max_tokens
    agg_tps: float                  # completion tokens / wall time, pooled over the level's phases
    phase_tps: list[float]
    ttft_p50_ms: float
    ttft_p95_ms: float
    decode_tps_median: float        # per request, streamed tokens after the first / time
    decode_tps_short_median: float  # the same over the requests with the shortest prompt
    prompt_tokens_mean: float
    cpu_per_token_ms: float | None  # server CPU time per completion token
    error_samples: list[str] = field(default_factory=list)


def level_stats(phases: list[Phase]) -> LevelStats:
    ok = [r for p in phases for r in p.ok]
    bad = [r for p in phases for r in p.results if not r.ok]
    tokens = sum(r.completion_tokens for r in ok)
    wall = sum(p.wall_s for p in phases)
    ttfts = [r.ttft for r in ok if r.ttft is not None]
    decode = [r.decode_tps for r in ok if r.decode_tps is not None]
    cpu = [p.server_cpu_s for p in phases]
    prompt = [r.prompt_tokens if r.prompt_tokens is not None else r.prompt_tokens_target for r in ok]
    return LevelStats(
        server=phases[0].server, concurrency=phases[0].concurrency, requests=len(ok), errors=len(bad),
        completion_tokens=tokens, tokens_per_request_mean=tokens / len(ok) if ok else math.nan,
        finish_length=sum(1 for r in ok if r.finish_reason == "length"),
        agg_tps=tokens / wall if wall > 0 else math.nan,
        phase_tps=[sum(r.completion_tokens for r in p.ok) / p.wall_s if p.wall_s > 0 else math.nan for p in phases],
        ttft_p50_ms=percentile(ttfts, 50) * 1e3, ttft_p95_ms=percentile(ttfts, 95) * 1e3,
        decode_tps_median=median(decode),
        decode_tps_short_median=median([r.decode_tps for r in ok if r.decode_tps is not None
                                        and r.prompt_tokens_target == min(PROMPT_LENGTHS)]),
        prompt_tokens_mean=statistics.fmean(prompt) if prompt else math.nan,
        cpu_per_token_ms=(sum(c for c in cpu if c is not None) / tokens * 1e3
                          if tokens and all(c is not None for c in cpu) else None),
        error_samples=sorted({r.error or "" for r in bad})[:3],
    )


def build_level_prompts(pf: PromptFactory, level: int, half: int, n: int) -> list[tuple[list[Message], int]]:
    """The prompts of one half of a level's ABBA: unique text, lengths cycling PROMPT_LENGTHS."""
    out = []
    for k in range(n):
        g = half * n + k
        target = PROMPT_LENGTHS[g % len(PROMPT_LENGTHS)]
        out.append((pf.story(target, key=10_000 * (level + 1) + 1_000 * half + k), target))
    return out


def warm_up(servers: list[Server], pf: PromptFactory, a: argparse.Namespace) -> None:
    for s in servers:
        for k in range(2):
            r = stream_chat(s, pf.story(PROMPT_LENGTHS[k], key=999 - k), 16, a.request_timeout)
            if not r.ok:
                raise RuntimeError(f"{s.name}: warm-up request failed: {r.error}\n{tail_file(s.log_path)}")


def run_load(servers: list[Server], pf: PromptFactory, a: argparse.Namespace
             ) -> tuple[list[LevelStats], list[Phase], list[str]]:
    stats: list[LevelStats] = []
    phases: list[Phase] = []
    order_log: list[str] = []
    by_name = {s.name: s for s in servers}
    for li, c in enumerate(a.concurrency):
        n = c * a.requests_per_client
        halves = [build_level_prompts(pf, li, h, n) for h in (0, 1)]
        names = [s.name for s in servers]
        first, *rest = names if li % 2 == 0 else names[::-1]
        # ABBA within the level: A B B A (A alternating between levels); the first visit of each
        # server gets the first half of the prompts, the second visit the second half.
        pattern = [first, *rest, *rest[::-1], first] if rest else [first, first]
        seen: dict[str, int] = {}
        level_phases: dict[str, list[Phase]] = {nm: [] for nm in names}
        for name in pattern:
            half = seen.get(name, 0)
            seen[name] = half + 1
            server = by_name[name]
            if not server.alive():
                raise RuntimeError(f"{name} is no longer running:\n{tail_file(server.log_path)}")
            log(f"{c} client(s): {name}, {n} requests (half {half + 1} of the prompts)")
            others = [s for s in servers if s is not server]
            p = run_phase(server, others, halves[half], c, a, order=len(phases))
            phases.append(p)
            level_phases[name].append(p)
            order_log.append(f"c{c}:{name}")
            tps = sum(r.completion_tokens for r in p.ok) / p.wall_s if p.wall_s > 0 else math.nan
            log(f"    {len(p.ok)}/{len(p.results)} ok, {tps:.1f} t/s"
                + (", stopped at --phase-timeout" if p.stopped_early else ""))
            for r in p.results:
                if not r.ok:
                    log(f"    request failed on {name}: {r.error}")
                    break
            stalled = [r for r in p.ok if r.max_gap_s > a.stall_warn]
            if stalled:
                worst = max(stalled, key=lambda r: r.max_gap_s)
                log(f"    warning: {len(stalled)} request(s) on {name} waited more than {a.stall_warn:.0f} s "
                    f"between two streamed tokens (worst: {worst.max_gap_s:.1f} s, "
                    f"{worst.t_end - worst.t_start:.1f} s for the whole request)")
        for name in names:
            stats.append(level_stats(level_phases[name]))
    return stats, phases, order_log


# --------------------------------------------------------------------------- prefix cache

@dataclass
class PrefixStats:
    server: str
    reps: int
    prompt_tokens: int | None
    cold_ttft_ms: list[float]
    warm_ttft_ms: list[float]
    cold_cached_tokens: list[int | None]
    warm_cached_tokens: list[int | None]

    @property
    def cold_median(self) -> float:
        return median(self.cold_ttft_ms)

    @property
    def warm_median(self) -> float:
        return median(self.warm_ttft_ms)


def run_prefix(servers: list[Server], pf: PromptFactory, a: argparse.Namespace) -> list[PrefixStats]:
    """Per rep: a request with a system prompt nobody sent before (cold: same length, another first
    token), then one repeating that system prompt with another question (warm)."""
    words = pf.first_words()
    body = pf.shared_system(a.prefix_tokens)
    out = {s.name: PrefixStats(s.name, 0, None, [], [], [], []) for s in servers}
    reps = min(a.prefix_reps, len(words) - 1)  # a first word used twice would not be fresh
    if reps < a.prefix_reps:
        log(f"prefix cache: {reps} repetitions (one per distinct first word), not {a.prefix_reps}")
    for rep in range(reps):
        system = words[(rep + 1) % len(words)] + body  # words[0] sized the prompt in shared_system
        q_cold = PREFIX_QUESTIONS[(2 * rep) % len(PREFIX_QUESTIONS)]
        q_warm = PREFIX_QUESTIONS[(2 * rep + 1) % len(PREFIX_QUESTIONS)]
        order = servers if rep % 2 == 0 else servers[::-1]
        for s in order:
            st = out[s.name]
            for kind, q in (("cold", q_cold), ("warm", q_warm)):
                msgs = [{"role": "system", "content": system}, {"role": "user", "content": q}]
                r = stream_chat(s, msgs, a.prefix_max_tokens, a.request_timeout)
                if not r.ok or r.ttft is None:
                    raise RuntimeError(f"{s.name}: prefix-cache request failed: {r.error or 'no content'}")
                st.prompt_tokens = r.prompt_tokens if r.prompt_tokens is not None else st.prompt_tokens
                (st.cold_ttft_ms if kind == "cold" else st.warm_ttft_ms).append(r.ttft * 1e3)
                (st.cold_cached_tokens if kind == "cold" else st.warm_cached_tokens).append(r.cached_tokens)
            st.reps += 1
        log(f"prefix rep {rep + 1}/{reps}: " + ", ".join(
            f"{n}: cold {st.cold_ttft_ms[-1]:.0f} ms, warm {st.warm_ttft_ms[-1]:.0f} ms" for n, st in out.items()))
    return list(out.values())


# --------------------------------------------------------------------------- single-stream benches

def run_cmd(cmd: list[str], what: str, env: dict[str, str] | None = None) -> str:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    except FileNotFoundError:
        die(f"{what}: executable not found: {cmd[0]}")
    if proc.returncode != 0:
        out = (proc.stderr.strip() or proc.stdout.strip() or "(no output)")[-2000:]
        die(f"{what} failed (exit {proc.returncode}): {shlex.join(cmd)}\n{out}")
    return proc.stdout


def tg_samples(records: Any, what: str) -> list[float]:
    if not isinstance(records, list):
        die(f"{what}: expected a JSON list, got {type(records).__name__}")
    out: list[float] = []
    for rec in records:
        if int(rec.get("n_prompt", 0)) == 0 and int(rec.get("n_gen", 0)) > 0:
            out += [float(v) for v in (rec.get("samples_ts") or [rec["avg_ts"]])]
    if not out:
        die(f"{what}: no tg record in its output")
    return out


def run_benches(model: Path, llama_bench: Path | None, a: argparse.Namespace, first: str) -> dict[str, list[float]]:
    """tg{max_tokens} single-stream decode: `ohai bench` and `llama-bench`, -p 0, in the given order."""
    out: dict[str, list[float]] = {}
    sides = ["ohai", "llama-bench"] if llama_bench is not None else ["ohai"]
    if first != "ohai":
        sides.reverse()
    for side in sides:
        log(f"{side} -p 0 -n {a.max_tokens} -t {a.threads} -r {a.bench_reps}")
        if side == "ohai":
            cmd = ohai_cmd("bench", "-m", str(model), "-p", "0", "-n", str(a.max_tokens), "-t", str(a.threads),
                           "-r", str(a.bench_reps), "--json")
            out[side] = tg_samples(parse_json_output(run_cmd(cmd, "ohai bench", ohai_env()), "ohai bench"),
                                   "ohai bench")
        else:
            assert llama_bench is not None
            cmd = [str(llama_bench), "-m", str(model), "-p", "0", "-n", str(a.max_tokens), "-t", str(a.threads),
                   "-r", str(a.bench_reps), "-o", "json"]
            out[side] = tg_samples(parse_json_output(run_cmd(cmd, "llama-bench"), "llama-bench"), "llama-bench")
    return out


# --------------------------------------------------------------------------- report

def fmt(v: float | None, digits: int = 1) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def md_table(head: list[str], rows: list[list[str]], right: set[int]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.rjust(w) if i in right else c.ljust(w)
                                 for i, (c, w) in enumerate(zip(cells, widths))) + " |"

    sep = "| " + " | ".join(("-" * (w - 1) + ":") if i in right else "-" * w for i, w in enumerate(widths)) + " |"
    return "\n".join([line(head), sep, *(line(r) for r in rows)])


def ratio_rows(stats: list[LevelStats], prefix: list[PrefixStats], benches: dict[str, list[float]],
               a: argparse.Namespace) -> list[dict[str, Any]]:
    get = {(s.server, s.concurrency): s for s in stats}
    rows: list[dict[str, Any]] = []

    def add(name: str, num: float | None, den: float | None, target: float | None, note: str = "") -> None:
        ok = num is not None and den is not None and den > 0 and not math.isnan(num) and not math.isnan(den)
        ratio = num / den if ok else None  # type: ignore[operator]
        rows.append({"ratio": name, "numerator": num, "denominator": den, "value": ratio, "target": target,
                     "met": None if ratio is None or target is None else ratio >= target, "note": note})

    if "ohai" in a.servers and "llama-server" in a.servers:
        for c in a.concurrency:
            o, l = get.get(("ohai", c)), get.get(("llama-server", c))
            add(f"ohai / llama-server aggregate t/s, {c} client(s)", o.agg_tps if o else None,
                l.agg_tps if l else None, TARGET_VS_LLAMA)
    if "ohai" in a.servers and 1 in a.concurrency and 4 in a.concurrency:
        add("ohai 4 clients / ohai 1 client, aggregate t/s", get[("ohai", 4)].agg_tps, get[("ohai", 1)].agg_tps,
            TARGET_SCALING)
    if "llama-server" in a.servers and 1 in a.concurrency and 4 in a.concurrency:
        add("llama-server 4 clients / 1 client, aggregate t/s (reference)", get[("llama-server", 4)].agg_tps,
            get[("llama-server", 1)].agg_tps, None)
    if "ohai" in a.servers and 1 in a.concurrency and benches.get("ohai"):
        tg = statistics.fmean(benches["ohai"])
        add(f"ohai 1 client streamed decode t/s, {min(PROMPT_LENGTHS)}-token prompts / `ohai bench` tg{a.max_tokens}",
            get[("ohai", 1)].decode_tps_short_median, tg, TARGET_VS_BENCH,
            "decode = (tokens - 1) / (last - first token), median over the requests with the shortest prompt: "
            "their context (40-168 tokens) is closest to tg128's (0-128)")
        add(f"ohai 1 client streamed decode t/s, all prompts / `ohai bench` tg{a.max_tokens}",
            get[("ohai", 1)].decode_tps_median, tg, None, "longer prompts decode slower (longer context)")
        add(f"ohai 1 client aggregate t/s / `ohai bench` tg{a.max_tokens} (with prompt processing)",
            get[("ohai", 1)].agg_tps, tg, None)
    if "llama-server" in a.servers and 1 in a.concurrency and benches.get("llama-bench"):
        add(f"llama-server 1 client streamed decode t/s, {min(PROMPT_LENGTHS)}-token prompts / llama-bench "
            f"tg{a.max_tokens} (reference)",
            get[("llama-server", 1)].decode_tps_short_median, statistics.fmean(benches["llama-bench"]), None)
    for p in prefix:
        add(f"{p.server} prefix cache: TTFT fresh / repeated ~{p.prompt_tokens or a.prefix_tokens}-token prefix",
            p.cold_median, p.warm_median, None, "speed-up of the first token from the cache")
    return rows


def print_text(report: dict[str, Any]) -> None:
    m, p = report["machine"], report["params"]
    print(f"machine:   {m['cpu']} (nproc {m['nproc']}), load average at start "
          f"{', '.join(f'{x:.2f}' for x in m['loadavg_at_start'])}")
    print(f"llama.cpp: build {report['llama_cpp']['build']} ({report['llama_cpp']['pinned']})")
    print(f"model:     {report['model']}")
    print(f"params:    parallel {p['parallel']}, threads {p['threads']}, ctx {p['ctx']} (shared by all slots), "
          f"max_tokens {p['max_tokens']}, {p['requests_per_client']} requests per client per phase, "
          f"prompts {min(PROMPT_LENGTHS)}-{max(PROMPT_LENGTHS)} tokens, temperature 0")
    print("servers:   " + "; ".join(f"{s['name']}: {s['cmd']}" for s in report["servers"]))
    print(f"order:     {' '.join(p['order'])}")
    print()
    rows = [[str(s["concurrency"]), s["server"], f"{s['requests']}" + (f" ({s['errors']} failed)" if s["errors"] else ""),
             fmt(s["prompt_tokens_mean"]), fmt(s["tokens_per_request_mean"]), f"{s['finish_length']}/{s['requests']}", fmt(s["agg_tps"]),
             " / ".join(fmt(x) for x in s["phase_tps"]), fmt(s["ttft_p50_ms"], 0), fmt(s["ttft_p95_ms"], 0),
             fmt(s["decode_tps_median"]), fmt(s["cpu_per_token_ms"], 2)]
            for s in report["levels"]]
    print(md_table(["clients", "server", "requests", "prompt tok/req", "tokens/req", "finish=length",
                    "aggregate t/s", "per phase t/s", "TTFT p50 ms", "TTFT p95 ms", "decode t/s/req", "CPU ms/token"],
                   rows, right={0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}))
    print()
    if report["prefix"]:
        rows = [[p["server"], str(p["prompt_tokens"] or "-"), str(p["reps"]), fmt(p["cold_median_ms"], 0),
                 fmt(p["warm_median_ms"], 0), fmt(p["cold_median_ms"] / p["warm_median_ms"], 2)
                 if p["warm_median_ms"] else "-",
                 ",".join(str(x) for x in p["cold_cached_tokens"]) + " / "
                 + ",".join(str(x) for x in p["warm_cached_tokens"])]
                for p in report["prefix"]]
        print(md_table(["prefix cache", "prompt tokens", "reps", "TTFT fresh ms (median)",
                        "TTFT repeated ms (median)", "speed-up", "cached tokens reported (fresh / repeated)"],
                       rows, right={1, 2, 3, 4, 5}))
        print()
    if report["bench"]:
        rows = [[k, f"tg{p['max_tokens']}", f"{statistics.fmean(v):.2f} ± {statistics.stdev(v) if len(v) > 1 else 0:.2f}",
                 str(len(v))] for k, v in report["bench"].items()]
        print(md_table(["single stream", "test", "t/s", "samples"], rows, right={2, 3}))
        print()
    rows = [[r["ratio"], fmt(r["value"], 3), "-" if r["target"] is None else f"≥ {r['target']:.2f}",
             "-" if r["met"] is None else ("yes" if r["met"] else "NO")] for r in report["ratios"]]
    print(md_table(["ratio", "value", "target", "met"], rows, right={1, 2}))
    print()
    print("aggregate t/s = completion tokens of all requests / wall time (first request sent -> last [DONE]),"
          " pooled over the level's two phases; decode t/s/req = (tokens - 1) / (last - first token);"
          " CPU ms/token = server process CPU time / completion tokens.")
    sources: dict[str, set[str]] = {}
    for r in report["requests"]:
        if r["ok"]:
            sources.setdefault(r["server"], set()).add(r["tokens_source"])
    print("completion tokens counted from the stream: " + "; ".join(
        f"{k}: {' + '.join(sorted(v)).replace('usage', 'its usage chunk').replace('chunks', 'content chunks')}"
        for k, v in sources.items()) + ".")
    idle = report.get("idle_cpu_max_fraction")
    if idle is not None:
        print(f"the idle server used at most {idle * 100:.1f} % of one core while the other one was measured.")
    client = report.get("client_cpu_max_fraction")
    if client is not None:
        print(f"the load generator (this process) used at most {client * 100:.1f} % of one core in a phase.")


def plot(report: dict[str, Any], path: Path) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib is not installed (pip install matplotlib); no plot")
        return
    levels = report["levels"]
    servers = list(dict.fromkeys(s["server"] for s in levels))
    colors = {"ohai": "tab:blue", "llama-server": "tab:orange"}
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name in servers:
        xs = [s["concurrency"] for s in levels if s["server"] == name]
        col = colors.get(name)
        ax1.plot(xs, [s["agg_tps"] for s in levels if s["server"] == name], "o-", color=col, label=name)
        ax2.plot(xs, [s["ttft_p50_ms"] for s in levels if s["server"] == name], "o-", color=col, label=f"{name} p50")
        ax2.plot(xs, [s["ttft_p95_ms"] for s in levels if s["server"] == name], "s--", color=col, label=f"{name} p95")
    conc = sorted({s["concurrency"] for s in levels})
    for ax in (ax1, ax2):
        ax.set_xscale("log", base=2)
        ax.set_xticks(conc)
        ax.set_xticklabels([str(c) for c in conc])
        ax.set_xlabel("concurrent clients")
        ax.grid(True, alpha=0.3)
        ax.legend()
    ax1.set_ylabel("aggregate completion tokens/s")
    ax1.set_ylim(bottom=0)
    ax1.set_title("throughput")
    ax2.set_ylabel("time to first token (ms)")
    ax2.set_ylim(bottom=0)
    ax2.set_title("time to first token")
    p = report["params"]
    fig.suptitle(f"{Path(report['model']).name}: parallel {p['parallel']}, {p['threads']} threads, "
                 f"ctx {p['ctx']}, max_tokens {p['max_tokens']} — {report['machine']['cpu']}", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    log(f"plot written to {path}")


# --------------------------------------------------------------------------- main

def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("-m", "--model", type=Path, help="GGUF model (default: ohai.default_model_path())")
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("-c", "--ctx", type=int, default=4096, help="total context, shared by all slots")
    ap.add_argument("--parallel", type=int, default=4, help="server slots (ohai --parallel, llama-server -np)")
    ap.add_argument("--concurrency", default="1,2,4,8", help="comma-separated client counts")
    ap.add_argument("--requests-per-client", type=int, default=4,
                    help="requests per client in each of the 2 phases per server and level")
    ap.add_argument("-n", "--max-tokens", type=int, default=128)
    ap.add_argument("--prefix-tokens", type=int, default=400, help="system prompt length of the prefix-cache test")
    ap.add_argument("--prefix-reps", type=int, default=5)
    ap.add_argument("--prefix-max-tokens", type=int, default=8)
    ap.add_argument("--bench-reps", type=int, default=3, help="repetitions of ohai bench / llama-bench, twice")
    ap.add_argument("--servers", default="ohai,llama-server", help="which servers: ohai, llama-server or both")
    ap.add_argument("--llama-server", type=Path, help="use this llama-server binary instead of building one")
    ap.add_argument("--llama-bench", type=Path, help="use this llama-bench binary instead of building one")
    ap.add_argument("--llama-server-args", default="", help="extra llama-server arguments (one string)")
    ap.add_argument("--ohai-args", default="", help="extra `ohai serve` arguments (one string)")
    ap.add_argument("--build-dir", type=Path, default=llama_tools.DEFAULT_BUILD_DIR)
    ap.add_argument("-j", "--jobs", type=int, help="parallel jobs for the llama.cpp tools build")
    ap.add_argument("--skip-prefix", action="store_true")
    ap.add_argument("--skip-bench", action="store_true")
    ap.add_argument("--ready-timeout", type=float, default=180.0, help="seconds to wait for a server's /health")
    ap.add_argument("--request-timeout", type=float, default=120.0,
                    help="a request still streaming after this many seconds is abandoned (counted as failed)")
    ap.add_argument("--phase-timeout", type=float, default=300.0,
                    help="no new request after this many seconds in one phase")
    ap.add_argument("--stall-warn", type=float, default=5.0,
                    help="warn about requests that waited longer than this between two tokens (s)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 1 and 4 clients, 1 request per client, 1 prefix rep, 1 bench rep")
    ap.add_argument("--plot", type=Path, help="write a PNG (tokens/s and TTFT vs concurrency) here")
    ap.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    a = ap.parse_args(argv)
    if a.quick:
        a.concurrency, a.requests_per_client, a.prefix_reps, a.bench_reps = "1,4", 1, 1, 1
    try:
        a.concurrency = sorted({int(x) for x in a.concurrency.split(",") if x.strip()})
    except ValueError:
        ap.error("--concurrency must be comma-separated integers")
    if not a.concurrency or min(a.concurrency) < 1 or max(a.concurrency) > 64:
        ap.error("--concurrency values must be 1..64")
    a.servers = [s.strip() for s in a.servers.split(",") if s.strip()]
    if not a.servers or any(s not in ("ohai", "llama-server") for s in a.servers) or len(set(a.servers)) != len(a.servers):
        ap.error("--servers: ohai, llama-server or both (comma-separated)")
    for name in ("threads", "ctx", "parallel", "requests_per_client", "max_tokens", "prefix_reps",
                 "prefix_max_tokens", "bench_reps", "prefix_tokens"):
        if getattr(a, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be >= 1")
    if max(PROMPT_LENGTHS) + a.max_tokens > a.ctx or a.prefix_tokens + 64 > a.ctx:
        ap.error("--ctx is too small for the prompts and --max-tokens")
    return a


def resolve_model(arg: Path | None) -> Path:
    if arg is not None:
        path = arg.expanduser().resolve()
    else:
        log("resolving the default model (downloaded on first use)")
        try:
            path = Path(import_ohai().default_model_path()).resolve()
        except Exception as e:
            die(f"ohai.default_model_path() failed: {e}")
    if not path.is_file():
        die(f"model not found: {path}")
    return path


def check_ohai_serve() -> None:
    proc = subprocess.run(ohai_cmd("serve", "--help"), capture_output=True, text=True, env=ohai_env(), check=False)
    if proc.returncode != 0 or "--parallel" not in proc.stdout:
        die(f"`python -m ohai serve` is not available in {Path(import_ohai().__file__).parent} "
            f"(exit {proc.returncode}): {(proc.stderr or proc.stdout).strip()[-300:]}")


def main(argv: Sequence[str] | None = None) -> int:
    a = parse_args(argv)
    t_run = time.time()
    machine = machine_info()
    import_ohai()
    if "ohai" in a.servers:
        check_ohai_serve()

    need = []
    if "llama-server" in a.servers and a.llama_server is None:
        need.append("llama-server")
    if "llama-server" in a.servers and not a.skip_bench and a.llama_bench is None:
        need.append("llama-bench")
    built: dict[str, Path] = {}
    if need:
        try:
            built = llama_tools.build_tools(need, a.build_dir, a.jobs, log)
        except llama_tools.LlamaToolsError as e:
            die(str(e))
    else:
        try:
            llama_tools.ensure_llama_tree(log)
        except llama_tools.LlamaToolsError as e:
            die(str(e))
    llama_server = a.llama_server or built.get("llama-server")
    llama_bench = a.llama_bench or built.get("llama-bench")
    if "llama-server" not in a.servers:
        llama_bench = None

    model = resolve_model(a.model)
    pf = PromptFactory(model)
    servers = make_servers(a, model, llama_server)
    report: dict[str, Any] = {}
    try:
        start_all(servers, a.ready_timeout)
        log("warming up")
        warm_up(servers, pf, a)
        benches: dict[str, list[float]] = {}
        if not a.skip_bench:
            for side, vals in run_benches(model, llama_bench, a, first="ohai").items():
                benches.setdefault(side, []).extend(vals)
        stats, phases, order = run_load(servers, pf, a)
        prefix = [] if a.skip_prefix else run_prefix(servers, pf, a)
        if not a.skip_bench:
            for side, vals in run_benches(model, llama_bench, a, first="llama-bench").items():
                benches.setdefault(side, []).extend(vals)
        metrics = {s.name: s.get("/metrics") for s in servers}
    except RuntimeError as e:
        die(str(e))
    finally:
        for s in servers:
            s.stop()
        pf.close()

    idle = [v / p.wall_s for p in phases for v in p.other_cpu_s.values() if v is not None and p.wall_s > 0]
    client = [p.client_cpu_s / p.wall_s for p in phases if p.wall_s > 0]
    pinned, build = llama_tools.pinned_info()
    report = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z", time.localtime(t_run)),
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "machine": machine,
        "loadavg_at_end": list(os.getloadavg()),
        "llama_cpp": {"pinned": pinned, "build": build, "llama_server": str(llama_server or ""),
                      "llama_bench": str(llama_bench or ""), "cpu_flags": llama_tools.cpu_flags()},
        "ohai": str(Path(import_ohai().__file__).parent),
        "model": str(model),
        "params": {"parallel": a.parallel, "threads": a.threads, "ctx": a.ctx, "max_tokens": a.max_tokens,
                   "concurrency": a.concurrency, "requests_per_client": a.requests_per_client,
                   "prompt_lengths": list(PROMPT_LENGTHS), "prefix_tokens": a.prefix_tokens,
                   "prefix_reps": a.prefix_reps, "bench_reps": a.bench_reps, "order": order, "quick": a.quick},
        "servers": [{"name": s.name, "cmd": shlex.join(s.cmd), "startup_s": s.startup_s} for s in servers],
        "levels": [asdict(s) for s in stats],
        "prefix": [{**asdict(p), "cold_median_ms": p.cold_median, "warm_median_ms": p.warm_median} for p in prefix],
        "bench": benches,
        "idle_cpu_max_fraction": max(idle) if idle else None,
        "client_cpu_max_fraction": max(client) if client else None,
        "requests": [{**asdict(r), "concurrency": p.concurrency, "phase": p.order, "ttft": r.ttft,
                      "decode_tps": r.decode_tps} for p in phases for r in p.results],
        "metrics": metrics,
    }
    report["ratios"] = ratio_rows(stats, prefix, benches, a)
    try:  # the whole report (every request) is kept next to the servers' logs
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        (LOG_DIR / "report.json").write_text(json.dumps(report, indent=2, default=str))
    except OSError as e:
        log(f"could not write {LOG_DIR / 'report.json'}: {e}")
    if a.plot:
        plot(report, a.plot)
    if a.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        print_text(report)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit("bench_serving: interrupted")
