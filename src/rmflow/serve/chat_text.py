"""Chat-templated text back into messages, so a reward server can re-render it with the reward model's own template.

RLHF trainers send text, not messages: OpenRLHF's ``query`` is the *policy's* chat-templated prompt plus response,
special tokens and left padding included; verl's ``input`` is rendered with the reward model's template. Scoring such
text as it is would give the reward model another template than it was trained on (or a second BOS), so the server
parses it and renders the messages once, its own way.

A template's shape is read by rendering sentinel conversations through it (``ChatFormat.derive``): the text before
the first user turn, between a user turn and the answer, between an answer and the next user turn, after the last
answer, and, where the template takes one, around a system turn. That works for any template that wraps each turn's
content in fixed text, which is what chat templates do. Besides the policy's own template (``--policy-tokenizer``)
and the reward model's, a few families are known by shape (``FAMILIES``), written after the templates their
tokenizers ship: ChatML (Qwen2.5-Instruct), Llama-3-Instruct, Gemma-it, Mistral-Instruct v0.2 and Tulu.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

# private-use characters: no template escapes or strips them, and no real text holds them
_S, _U1, _A1, _U2, _A2 = ("\ue000S\ue000", "\ue000U1\ue000", "\ue000A1\ue000", "\ue000U2\ue000", "\ue000A2\ue000")

FAMILIES = {
    "chatml": ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
               "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"),
    "llama3": ("<|begin_of_text|>{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n"
               "{{ m['content'] | trim }}<|eot_id|>{% endfor %}"
               "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"),
    "gemma": ("<bos>{% for m in messages %}<start_of_turn>{{ 'model' if m['role'] == 'assistant' else m['role'] }}"
              "\n{{ m['content'] | trim }}<end_of_turn>\n{% endfor %}"
              "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"),
    "mistral": ("<s>{% for m in messages %}{% if m['role'] == 'user' %}[INST] {{ m['content'] }} [/INST]"
                "{% else %}{{ m['content'] }}</s>{% endif %}{% endfor %}"),
    "tulu": ("{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n{% endfor %}"
             "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"),
}
# each family's end-of-sequence and padding tokens, which a policy's decoded output carries around the text
FAMILY_SPECIALS = {"chatml": ("<|im_end|>", "<|endoftext|>"), "llama3": ("<|eot_id|>", "<|end_of_text|>"),
                   "gemma": ("<eos>", "<pad>", "<end_of_turn>"), "mistral": ("</s>",), "tulu": ("</s>",)}

Render = Callable[[list[dict], bool], str]  # (messages, add_generation_prompt) -> text


def _between(text: str, left: str, right: str) -> str | None:
    i, j = text.find(left), text.find(right)
    return text[i + len(left):j] if 0 <= i and i + len(left) <= j else None


@dataclass(frozen=True)
class ChatFormat:
    name: str
    start: str                # before the first user turn's content
    user_to_answer: str       # after a user turn's content, up to the answer's content
    answer_to_user: str       # after an answer, up to the next user turn's content
    end: str                  # after the last answer
    system_start: str | None  # before a system turn's content (None: the template takes no system turn)
    system_to_user: str | None
    specials: tuple[str, ...] = ()  # its EOS and pad tokens, dropped around the text

    @classmethod
    def derive(cls, name: str, render: Render, specials: tuple[str, ...] = ()) -> ChatFormat | None:
        """The shape of the template behind ``render``; None when it is not one of fixed turn wrappers."""
        try:
            text = render([{"role": "user", "content": _U1}, {"role": "assistant", "content": _A1},
                           {"role": "user", "content": _U2}, {"role": "assistant", "content": _A2}], False)
        except Exception:  # a template that refuses the probe (jinja raise_exception) has no usable shape
            return None
        marks = [text.find(m) for m in (_U1, _A1, _U2, _A2)]
        if any(m < 0 for m in marks) or marks != sorted(marks):
            return None
        start = text[:marks[0]]
        user_to_answer = _between(text, _U1, _A1)
        answer_to_user = _between(text, _A1, _U2)
        if user_to_answer is None or answer_to_user is None or _between(text, _U2, _A2) != user_to_answer:
            return None
        end = text[marks[3] + len(_A2):]
        system_start = system_to_user = None
        try:
            with_system = render([{"role": "system", "content": _S}, {"role": "user", "content": _U1},
                                  {"role": "assistant", "content": _A1}], False)
            if _S in with_system and _U1 in with_system:
                system_start = with_system[:with_system.find(_S)]
                system_to_user = _between(with_system, _S, _U1)
                if start.startswith(system_start):  # no system wrapper of its own (Mistral's renders it as an answer)
                    system_start = system_to_user = None
        except Exception:  # a template that rejects system turns (Gemma's)
            pass
        return cls(name, start, user_to_answer, answer_to_user, end, system_start, system_to_user, specials)

    def parse(self, text: str, strip: tuple[str, ...] = ()) -> list[dict] | None:
        """Messages ending with the assistant's answer (empty when the text stops at the generation prompt), or None
        when the text is not in this format. ``strip``: more special tokens to drop around it (pad, EOS)."""
        strip = tuple(strip) + self.specials
        text = _strip(text, strip, leading=True)
        messages = []
        if self.system_start and self.system_to_user is not None and text.startswith(self.system_start) \
                and self.system_to_user in text[len(self.system_start):]:
            rest = text[len(self.system_start):]
            content, rest = rest.split(self.system_to_user, 1)
            messages.append({"role": "system", "content": content})
        else:
            rest = _strip_prefix(text, self.start)
            if rest is None:
                return None
        while True:
            if self.user_to_answer not in rest:
                return None
            user, rest = rest.split(self.user_to_answer, 1)
            messages.append({"role": "user", "content": user})
            if self.answer_to_user and self.answer_to_user in rest:
                answer, rest = rest.split(self.answer_to_user, 1)
                messages.append({"role": "assistant", "content": answer})
                continue
            closing = tuple(m for m in (self.end, self.end.rstrip(), self.answer_to_user) if m)
            messages.append({"role": "assistant", "content": _strip(rest, strip + closing, leading=False)})
            return messages


def _strip_prefix(text: str, start: str) -> str | None:
    """``text`` after ``start``; a start that opens with a BOS the text lacks (decoded without it) still matches."""
    if text.startswith(start):
        return text[len(start):]
    for cut in range(1, len(start)):
        if start[cut - 1] == ">" and text.startswith(start[cut:]):  # a leading special token such as <s>
            return text[len(start) - cut:]
    return None


def _strip(text: str, tokens: tuple[str, ...], leading: bool) -> str:
    tokens = tuple(t for t in tokens if t)
    changed = True
    while changed:
        changed = False
        for token in tokens:
            if leading and text.startswith(token):
                text, changed = text[len(token):], True
            if not leading and text.endswith(token):
                text, changed = text[:-len(token)], True
    return text


def jinja_render(template: str, bos: str = "", eos: str = "") -> Render:
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    compiled = ImmutableSandboxedEnvironment().from_string(template)
    return lambda messages, generation: compiled.render(messages=messages, add_generation_prompt=generation,
                                                        bos_token=bos, eos_token=eos)


def tokenizer_render(tokenizer) -> Render:
    return lambda messages, generation: tokenizer.apply_chat_template(messages, tokenize=False,
                                                                      add_generation_prompt=generation)


def formats(*tokenizers) -> list[ChatFormat]:
    """The formats a server tries, in order: each given tokenizer's own, then the known families."""
    found = [ChatFormat.derive(getattr(t, "name_or_path", "tokenizer"), tokenizer_render(t),
                               tuple(x for x in (t.eos_token, t.pad_token) if x)) for t in tokenizers]
    found += [ChatFormat.derive(name, jinja_render(template), FAMILY_SPECIALS[name])
              for name, template in FAMILIES.items()]
    return [f for f in found if f is not None]


def parse_chat_text(text: str, candidates: list[ChatFormat], strip: tuple[str, ...] = ()) -> list[dict] | None:
    """The first format that reads ``text`` as a conversation ending with an answer."""
    for fmt in candidates:
        messages = fmt.parse(text, strip)
        if messages and messages[-1]["role"] == "assistant":
            return messages
    return None
