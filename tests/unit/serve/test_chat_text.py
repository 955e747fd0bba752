"""Policy-templated text read back into messages (rmflow.serve.chat_text): every known family, system turns,
padding and EOS around it, a missing BOS, and text in no template."""

from __future__ import annotations

import pytest

from rmflow.serve.chat_text import FAMILIES, ChatFormat, formats, jinja_render, parse_chat_text

CHAT = [{"role": "user", "content": "What is 2 + 2?"}, {"role": "assistant", "content": "It is 4."},
        {"role": "user", "content": "And 3 + 3?"}, {"role": "assistant", "content": "6, with\nsteps: 3 + 3 = 6"}]
EOS = {"chatml": "<|im_end|>", "llama3": "<|eot_id|>", "gemma": "<eos>", "mistral": "</s>", "tulu": "</s>"}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_each_family_reads_back_a_policy_query_with_padding_and_eos(family):
    fmt = ChatFormat.derive(family, jinja_render(FAMILIES[family]))
    prompt = jinja_render(FAMILIES[family])(CHAT[:-1], True)
    query = "<pad><pad>" + prompt + CHAT[-1]["content"] + EOS[family] + "<pad>"  # OpenRLHF: left padding, EOS
    assert fmt.parse(query, strip=("<pad>", EOS[family])) == CHAT
    # the same text through the list a server tries, in any order, finds the right family
    assert parse_chat_text(query, formats(), strip=("<pad>", EOS[family])) == CHAT


def test_a_system_turn_and_a_missing_bos_are_read():
    render = jinja_render(FAMILIES["llama3"])
    fmt = ChatFormat.derive("llama3", render)
    chat = [{"role": "system", "content": "Be brief."}] + CHAT[:2]
    assert fmt.parse(render(chat, False)) == chat
    assert fmt.parse(render(CHAT[:2], False).removeprefix("<|begin_of_text|>")) == CHAT[:2]


def test_a_prompt_that_stops_at_the_generation_prompt_has_an_empty_answer():
    render = jinja_render(FAMILIES["chatml"])
    assert ChatFormat.derive("chatml", render).parse(render(CHAT[:1], True)) == CHAT[:1] + [
        {"role": "assistant", "content": ""}]


def test_text_in_no_template_is_not_a_conversation():
    assert parse_chat_text("just some words", formats()) is None
    assert ChatFormat.derive("broken", lambda messages, generation: "no content at all") is None


def test_the_models_own_template_is_derived_from_its_tokenizer(tiny_base):
    from rmflow.models.load import load_tokenizer
    from rmflow.train.batching import render

    tokenizer = load_tokenizer(str(tiny_base))
    own = formats(tokenizer)[0]
    assert own.name == tokenizer.name_or_path
    assert own.parse(render(tokenizer, CHAT)) == CHAT
