"""Tiny stand-ins of the model families the paper recipe uses, each with its family's architecture class and config
keys, special tokens and chat template (as in the hub repositories' config.json / tokenizer_config.json).

What is real: the architecture class, the config keys that change behaviour (Llama-3.1's llama3 rope scaling,
Gemma-2's soft-capping, sliding window and query scaling, Mistral's rope theta), the special-token strings, which
tokens a family lacks (Llama-3 and Mistral have no pad token), the BOS the tokenizer adds, and the chat templates
(restated from the repositories' tokenizer_config.json; Llama-3.1's without its tool-calling branches). What is
simplified: sizes (2 layers, hidden 64), a BPE vocabulary of about 1,000 pieces trained on the rehearsal rows
instead of the real 32k-256k vocabularies (so token ids differ), random weights.
"""

from __future__ import annotations

from dataclasses import dataclass

LLAMA3_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + "
    "message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
    "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)
# Llama-3.1-8B-Instruct's template for conversations without tools: a system header with the knowledge cut-off and
# date is always written (the user's system message, if any, follows it).
LLAMA31_TEMPLATE = (
    "{{- bos_token }}{%- if not date_string is defined %}{%- set date_string = \"26 Jul 2024\" %}{%- endif %}"
    "{%- if messages[0]['role'] == 'system' %}{%- set system_message = messages[0]['content']|trim %}"
    "{%- set messages = messages[1:] %}{%- else %}{%- set system_message = \"\" %}{%- endif %}"
    "{{- \"<|start_header_id|>system<|end_header_id|>\\n\\n\" }}{{- \"Cutting Knowledge Date: December 2023\\n\" }}"
    "{{- \"Today Date: \" + date_string + \"\\n\\n\" }}{{- system_message }}{{- \"<|eot_id|>\" }}"
    "{%- for message in messages %}{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ "
    "message['content'] | trim + '<|eot_id|>' }}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"
)
MISTRAL_TEMPLATE = (
    "{%- if messages[0]['role'] == 'system' %}{%- set system_message = messages[0]['content'] %}"
    "{%- set loop_messages = messages[1:] %}{%- else %}{%- set loop_messages = messages %}{%- endif %}"
    "{{- bos_token }}{%- for message in loop_messages %}"
    "{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{- raise_exception('After the optional system "
    "message, conversation roles must alternate user/assistant/user/assistant/...') }}{%- endif %}"
    "{%- if message['role'] == 'user' %}{%- if loop.first and system_message is defined %}"
    "{{- ' [INST] ' + system_message + '\\n\\n' + message['content'] + ' [/INST]' }}{%- else %}"
    "{{- ' [INST] ' + message['content'] + ' [/INST]' }}{%- endif %}"
    "{%- elif message['role'] == 'assistant' %}{{- ' ' + message['content'] + eos_token}}{%- else %}"
    "{{- raise_exception('Only user and assistant roles are supported, with the exception of an initial optional "
    "system message!') }}{%- endif %}{%- endfor %}"
)
GEMMA_TEMPLATE = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
    "{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}"
    "{% endif %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}"
)


@dataclass(frozen=True)
class Family:
    """One model family: tokenizer kind and specials, chat template, architecture and config keys."""

    name: str
    source: str                      # where the facts come from (the repository whose files are mirrored)
    byte_level: bool                 # tiktoken-style byte-level BPE (Llama-3) or SentencePiece-style (Mistral, Gemma)
    tokenizer_class: str
    bos: str
    eos: str
    unk: str | None
    pad: str | None                  # None: the family has no pad token (rmflow adds [PAD] for training)
    extra_specials: tuple[str, ...]
    chat_template: str
    config_class: str
    eos_ids_also: tuple[str, ...] = ()   # more end tokens in config/generation_config eos_token_id (Llama-3.x)


LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
                r"\s*[\r\n]+|\s+(?!\S)|\s+")
LLAMA3_SPECIALS = ("<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>", "<|reserved_special_token_0|>",
                   "<|reserved_special_token_1|>")
FAMILIES = {
    "llama3": Family(
        "llama3", "meta-llama/Meta-Llama-3-8B-Instruct config.json, tokenizer_config.json", True,
        "PreTrainedTokenizerFast", "<|begin_of_text|>", "<|eot_id|>", None, None,
        ("<|end_of_text|>", *LLAMA3_SPECIALS), LLAMA3_TEMPLATE, "LlamaConfig", eos_ids_also=("<|end_of_text|>",)),
    "llama31": Family(
        "llama31", "meta-llama/Llama-3.1-8B-Instruct config.json, tokenizer_config.json", True,
        "PreTrainedTokenizerFast", "<|begin_of_text|>", "<|eot_id|>", None, None,
        ("<|end_of_text|>", *LLAMA3_SPECIALS, "<|eom_id|>", "<|python_tag|>", "<|finetune_right_pad_id|>"),
        LLAMA31_TEMPLATE, "LlamaConfig", eos_ids_also=("<|end_of_text|>", "<|eom_id|>")),
    "mistral": Family(
        "mistral", "mistralai/Mistral-7B-Instruct-v0.2 config.json, tokenizer_config.json", False,
        "LlamaTokenizer", "<s>", "</s>", "<unk>", None, (), MISTRAL_TEMPLATE, "MistralConfig"),
    "gemma": Family(
        "gemma", "google/gemma-2b-it config.json, tokenizer_config.json", False, "GemmaTokenizer", "<bos>", "<eos>",
        "<unk>", "<pad>", ("<start_of_turn>", "<end_of_turn>"), GEMMA_TEMPLATE, "GemmaConfig"),
    "gemma2": Family(
        "gemma2", "google/gemma-2-9b-it and gemma-2-27b-it config.json, tokenizer_config.json", False,
        "GemmaTokenizer", "<bos>", "<eos>", "<unk>", "<pad>", ("<start_of_turn>", "<end_of_turn>"), GEMMA_TEMPLATE,
        "Gemma2Config"),
}
SIZES = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
         "num_key_value_heads": 2, "head_dim": 16}
VOCAB = 1024


def build_tokenizer(family: Family, corpus: list[str], pad: str | None = None):
    """A tokenizer with the family's specials and template, trained on ``corpus``; ``pad`` adds a pad token the
    family lacks (the released reward models that added "[PAD]")."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = [t for t in (family.pad, family.eos, family.bos, family.unk) if t] + list(family.extra_specials)
    if family.byte_level:  # Llama-3's tokenizer.json: its split regex, then bytes to unicode without a regex
        core = Tokenizer(models.BPE())
        core.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(LLAMA3_SPLIT), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
        core.decoder = decoders.ByteLevel()
        alphabet = pre_tokenizers.ByteLevel.alphabet()
    else:  # SentencePiece's word boundary "▁", prepended once, as these tokenizer.json files do
        core = Tokenizer(models.BPE(unk_token=family.unk, fuse_unk=True))
        core.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
        core.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.Fuse(), decoders.Strip(" ", 1, 0)])
        alphabet = sorted({c for text in corpus for c in text.replace(" ", "▁")})
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, special_tokens=specials, initial_alphabet=alphabet,
                                  show_progress=False)
    core.train_from_iterator(corpus, trainer)
    bos_id = core.token_to_id(family.bos)
    core.post_processor = processors.TemplateProcessing(  # the BOS every one of these tokenizers adds
        single=f"{family.bos} $A", pair=f"{family.bos} $A {family.bos} $B", special_tokens=[(family.bos, bos_id)])
    names = {"bos_token": family.bos, "eos_token": family.eos}
    if family.unk:
        names["unk_token"] = family.unk
    if family.pad or pad:
        names["pad_token"] = family.pad or pad
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, **names)
    if pad and not family.pad:
        tokenizer.add_special_tokens({"pad_token": pad})
    tokenizer.chat_template = family.chat_template
    return tokenizer


def build_model(family: Family, tokenizer, *, architecture: str, behaviour: dict, seed: int, num_labels: int = 1):
    """``architecture`` at the rehearsal size with the repository's recorded ``behaviour`` keys (rmflow.hub_facts),
    random weights from ``seed``, stored in bf16. The keys tied to the real size follow the stand-in's
    (``SIZE_TIED``)."""
    import torch
    import transformers

    eos = [tokenizer.convert_tokens_to_ids(family.eos)] + [tokenizer.convert_tokens_to_ids(t)
                                                           for t in family.eos_ids_also]
    behaviour = {k: v for k, v in behaviour.items() if k not in SIZE_TIED}
    sizes = dict(SIZES)
    if "query_pre_attn_scalar" in SIZE_TIED and family.config_class == "Gemma2Config":
        sizes["query_pre_attn_scalar"] = sizes["head_dim"]
    config = getattr(transformers, family.config_class)(
        vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id, eos_token_id=eos if len(eos) > 1 else eos[0],
        pad_token_id=tokenizer.pad_token_id, **{**behaviour, **sizes})
    config.architectures = [architecture]
    classifier = architecture.endswith("ForSequenceClassification")
    if classifier:
        config.num_labels = num_labels
    cls = getattr(transformers, architecture)
    torch.manual_seed(seed)
    model = cls(config)
    return model.to(torch.bfloat16)


# recorded behaviour keys the stand-in cannot keep, because they follow the real model's size or vocabulary, and why
SIZE_TIED = {
    "query_pre_attn_scalar": "Gemma-2 scales queries by this (the real 9B: its head_dim 256; 27B: hidden/heads 144); "
                             "the stand-in's is its own head_dim",
    "gating_hidden_dim": "ArmoRM's gate width (1024) scaled down with the hidden size",
    "pad_token_id": "the stand-in vocabulary's own id of the same pad token",
    "torch_dtype": "stand-ins are stored in bf16",
}
