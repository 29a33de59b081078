"""llama-cpp-python's OpenAI-compatible server, loading models as the embedded provider does.

    python -m shared.llm.llama_server --model MODEL.gguf [llama_cpp.server's other arguments]

The stock `python -m llama_cpp.server` repacks weights for the CPU's extra buffer types; on CPUs
with AMX (current Xeons) that build of llama.cpp then crashes in its first decode. This runs the
same server with them off (`without_extra_buffer_types`), so the `openai` provider can be pointed
at a GGUF on any x86-64 or arm64 machine without Ollama; the tests and `bench/answer_quality.py`
start it this way.
"""

from shared.llm.embedded import without_extra_buffer_types


def main() -> None:
    from llama_cpp.server.__main__ import main as serve

    with without_extra_buffer_types():
        serve()  # type: ignore[no-untyped-call]


if __name__ == "__main__":
    main()
