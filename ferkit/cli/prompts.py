"""``ferkit prompts``: MPA-FER prompt texts — ``show`` the hard/soft prompts with token counts, ``generate`` the class
descriptions through an OpenAI-compatible chat endpoint."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ferkit.cli._common import print_json

ENV_URL = ("FERKIT_LLM_BASE_URL", "OPENAI_BASE_URL")
ENV_MODEL = ("FERKIT_LLM_MODEL",)
ENV_KEY = ("FERKIT_LLM_API_KEY", "OPENAI_API_KEY")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("prompts", help="MPA-FER prompts: show them, regenerate class descriptions",
                       description="Show MPA-FER's hard and soft prompts, or regenerate the class descriptions.")
    ps = p.add_subparsers(dest="prompts_command", metavar="ACTION")
    show = ps.add_parser("show", help="print the prompts and their CLIP token counts")
    show.add_argument("--hard-prompt", choices=("h1", "h2", "h3"), default="h3")
    show.add_argument("--descriptions", default="builtin", help="descriptions JSON (default: the shipped file)")
    show.add_argument("--labels", default="affectnet8", help="label order name (rafdb, ferplus, ...) or comma list")
    show.add_argument("--class-words", choices=("noun", "adjective"), default="noun")
    show.add_argument("--n-ctx", type=int, default=10)
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=run_show)

    gen = ps.add_parser("generate", aliases=["describe"], help="ask an LLM the paper's question for each class",
                        description="One chat request per class with the paper's question; answers are cached, "
                                    "condensed to one sentence and fitted to the 77-token prompt budget. "
                                    "Endpoint, model and key come from the options or the environment "
                                    f"({', '.join(ENV_URL)}; {', '.join(ENV_MODEL)}; {', '.join(ENV_KEY)}).")
    gen.add_argument("--out", required=True, help="descriptions JSON to write")
    gen.add_argument("--classes", nargs="+", default=None, help="canonical classes (default: all 8)")
    gen.add_argument("--base-url", default=None, help="e.g. https://api.openai.com/v1 or http://127.0.0.1:8000/v1")
    gen.add_argument("--model", default=None, help="chat model id")
    gen.add_argument("--api-key", default=None, help="API key (prefer --api-key-env or the environment)")
    gen.add_argument("--api-key-env", default=None, help="name of the environment variable holding the key")
    gen.add_argument("--temperature", type=float, default=0.0)
    gen.add_argument("--max-prompt-tokens", type=int, default=77)
    gen.add_argument("--class-words", choices=("noun", "adjective"), default="noun")
    gen.add_argument("--cache-dir", default=None, help="answer cache (default $FERKIT_HOME/cache/llm)")
    gen.add_argument("--refresh", action="store_true", help="ignore cached answers")
    gen.add_argument("--timeout", type=float, default=60.0)
    gen.set_defaults(func=run_generate)

    def usage(_args: argparse.Namespace) -> int:
        p.print_help()
        return 2

    p.set_defaults(func=usage)


def _labels(spec: str) -> tuple[str, ...]:
    from ferkit.labels import order

    return order(spec.split(",") if "," in spec else spec)


def run_show(args: argparse.Namespace) -> int:
    from ferkit.clip.tokenizer import count_tokens
    from ferkit.models.mpa_fer.prompts import hard_prompt, load_descriptions, soft_prompt

    descs, sha = load_descriptions(args.descriptions) if args.hard_prompt == "h3" else ({}, None)
    rows = []
    for name in _labels(args.labels):
        hard = hard_prompt(name, args.hard_prompt, descs, args.class_words)
        soft = soft_prompt(name, args.n_ctx, "class", None, args.class_words)
        rows.append({"class": name, "hard_prompt": hard, "hard_tokens": count_tokens(hard),
                     "soft_prompt": soft, "soft_tokens": count_tokens(soft)})
    if args.json:
        print_json({"descriptions_sha256": sha, "prompts": rows})
        return 0
    if sha:
        print(f"descriptions: {args.descriptions} (sha256 {sha})")
    for r in rows:
        flag = "  OVER 77!" if r["hard_tokens"] > 77 else ""
        print(f"{r['class']:10s} hard {r['hard_tokens']:3d} tokens{flag} | soft {r['soft_tokens']:3d} | "
              f"{r['hard_prompt']}")
    return 0


def _first_env(names) -> str | None:
    return next((os.environ[n] for n in names if os.environ.get(n)), None)


def run_generate(args: argparse.Namespace) -> int:
    from ferkit.errors import ConfigError
    from ferkit.labels import CANONICAL, canonical
    from ferkit.models.mpa_fer.llm import ChatEndpoint, generate_descriptions, write_descriptions

    base_url = args.base_url or _first_env(ENV_URL)
    model = args.model or _first_env(ENV_MODEL)
    key = args.api_key or (os.environ.get(args.api_key_env) if args.api_key_env else _first_env(ENV_KEY))
    if not base_url or not model:
        raise ConfigError("an endpoint and a model are needed: --base-url URL --model ID (or FERKIT_LLM_BASE_URL / "
                          "FERKIT_LLM_MODEL)")
    if args.api_key_env and not key:
        raise ConfigError(f"environment variable {args.api_key_env} is not set")
    from ferkit.paths import cache_subdir

    cache = Path(args.cache_dir) if args.cache_dir else cache_subdir("cache", "llm")
    classes = [canonical(c) for c in args.classes] if args.classes else list(CANONICAL)
    endpoint = ChatEndpoint(base_url, model, key, args.temperature, args.timeout)
    doc = generate_descriptions(classes, endpoint, cache_dir=cache, refresh=args.refresh,
                                max_prompt_tokens=args.max_prompt_tokens, style=args.class_words)
    path = write_descriptions(doc, args.out)
    for name, desc in doc["descriptions"].items():
        print(f"{name:10s} {desc}")
    print(f"wrote {path}")
    return 0
