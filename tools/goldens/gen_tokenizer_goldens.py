#!/usr/bin/env python3
"""Builds two small byte-level BPE tokenizers with the Hugging Face `tokenizers`
package and writes golden encodings for data/bpe_tokenizer_test.cc.

    tools/setup.sh --test && /usr/bin/python3 tools/goldens/gen_tokenizer_goldens.py

Writes data/testdata/tokenizers/{gpt2_style,llama3_style}/ with tokenizer.json,
tokenizer_config.json and goldens.jsonl (one line per text: ids without and
with special tokens from `tokenizers`, transformers' input_ids, offsets and
the decoded text). Nothing is downloaded: the tokenizers are trained here on
the corpus below. Deterministic (fixed corpus; the BPE trainer is
deterministic).
"""
import json
import os
import random

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "data", "testdata",
                    "tokenizers")

LLAMA3_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")

LLAMA3_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
    "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim "
    "+ '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}"
    "{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant"
    "<|end_header_id|>\n\n' }}{% endif %}")
CHATML_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] "
    "+ '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' "
    "}}{% endif %}")

BASE = [
    "The quick brown fox jumps over the lazy dog. It's 2024, and we're testing tokenizers!",
    "Below is an instruction that describes a task. Write a response that appropriately completes the request.",
    "### Instruction:\nSort the numbers 4, 8, 15, 16, 23 and 42.\n\n### Response:\n4 8 15 16 23 42",
    "def add(a, b):\n    return a + b  # adds two numbers\n\nprint(add(12345, 67890))",
    "Les élèves ont étudié à l'école. Ça va très bien, merci! Où est la bibliothèque?",
    "Der Straßenbahnfahrer öffnete die Tür. Schöne Grüße aus München.",
    "東京は日本の首都です。今日は天気がいいですね。",
    "我们正在训练一个小型语言模型。数据很重要。",
    "Привет, мир! Как дела? Всё хорошо.",
    "emoji: 😀😃🎉🚀 and symbols: ©®™ → ≠ ≤ ≥ ∞",
    "Numbers: 3.14159, 2,718, 1e-9, 100000000, ٣٤٥, ²³, ½.",
    "I'm sure you'll see they've done it; she'd say he's RIGHT. DON'T STOP, WE'RE HERE.",
    "Tabs\tand  double  spaces   and\n\nnewlines\r\nwindows line ends\n",
]


def corpus():
    rng = random.Random(1234)
    lines = []
    for _ in range(60):
        for b in BASE:
            words = b.split(" ")
            rng.shuffle(words)
            lines.append(" ".join(words))
            lines.append(b)
    return lines


def random_texts(n, seed):
    """Random strings over a pool that exercises every class boundary."""
    pool = (list("abcXYZ'sStTrReEvVmMlLdD") + list("0123456789") + ["٣", "²", "½", "Ⅻ", "〇"] +
            [" ", " ", "  ", "\t", "\n", "\r", "\r\n", "\x0b", "\x0c", "\u00a0", "\u3000", "\u2028",
             "\u0085", "\u2009"] + list(".,;:!?-_()[]{}\"/\\@#$%^&*+=<>|~`") +
            ["é", "ß", "ñ", "东", "京", "語", "ア", "й", "Ω", "\u0301", "\u0308", "😀", "🎉", "\u200d",
             "\x01", "\x1f", "\x7f"])
    rng = random.Random(seed)
    return ["".join(rng.choice(pool) for _ in range(rng.randint(1, 30))) for _ in range(n)]


TEXTS = [
    "", "a", " ", "   ", "\n", "\n\n\n", " \n ", "\t\t x", "hello world", " hello  world ",
    "Hello, World! 1234567 89", "x = 12345678901", "I'm fine, you're OK, they'll go; it's 'quoted'.",
    "I'M FINE, YOU'RE OK", "l'école est grande", "naïve café résumé", "日本語のテキスト、句読点。",
    "中文和English混合123", "😀 emoji 🎉🎉 end", "tab\tsep\tvalues\n", "line one\r\nline two\r\n",
    "trailing spaces   ", "   leading spaces", "a  b   c    d", "numbers ٣٤٥ ²³ ½ Ⅻ",
    "combining e\u0301 and \u00a0nbsp\u3000ideographic", "  \n\n  text\n  \n",
    "code:\n    if x:\n        return y\n", "$100.00 (approx.) -- 50% off!!!",
]


def build_gpt2_style(path):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=900, min_frequency=2,
                                  special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(corpus(), trainer)
    tok.save(os.path.join(path, "tokenizer.json"))
    config = {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<|endoftext|>",
              "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>", "model_max_length": 2048,
              "chat_template": CHATML_TEMPLATE}
    return tok, config


def build_llama3_style(path):
    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
                "<|eot_id|>", "<|reserved_special_token_0|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=1200, min_frequency=2, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(corpus(), trainer)
    bos = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.TemplateProcessing(
        single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B",
        special_tokens=[("<|begin_of_text|>", bos)])
    tok.add_tokens([AddedToken("<sep>", lstrip=True, rstrip=False, normalized=False)])
    tok.save(os.path.join(path, "tokenizer.json"))
    config = {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<|begin_of_text|>",
              "eos_token": "<|eot_id|>", "model_max_length": 8192, "chat_template": LLAMA3_TEMPLATE}
    return tok, config


def main():
    for name, build in (("gpt2_style", build_gpt2_style), ("llama3_style", build_llama3_style)):
        path = os.path.join(ROOT, name)
        os.makedirs(path, exist_ok=True)
        tok, config = build(path)
        with open(os.path.join(path, "tokenizer_config.json"), "w") as f:
            json.dump(config, f, indent=2, ensure_ascii=False)
            f.write("\n")
        hf = PreTrainedTokenizerFast.from_pretrained(path)
        texts = list(TEXTS)
        special = ["<|endoftext|>", "<|im_start|>user\nhi<|im_end|>\n"] if name == "gpt2_style" else [
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>",
            "a<|eot_id|>b <|eot_id|> c", "x  <sep>y", "<sep><sep>"]
        texts += special + random_texts(300, 7 if name == "gpt2_style" else 8)
        with open(os.path.join(path, "goldens.jsonl"), "w") as f:
            meta = {"bos_token_id": hf.bos_token_id, "eos_token_id": hf.eos_token_id,
                    "pad_token_id": hf.pad_token_id, "vocab_size": len(hf)}
            f.write(json.dumps({"meta": meta}) + "\n")
            for text in texts:
                plain = tok.encode(text, add_special_tokens=False)
                full = tok.encode(text)
                row = {"text": text, "ids": plain.ids, "ids_with_special": full.ids,
                       "hf_input_ids": hf(text)["input_ids"],
                       "offsets": [list(o) for o in plain.offsets],
                       "decoded": tok.decode(plain.ids, skip_special_tokens=True)}
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        print(f"wrote {path} ({len(texts)} texts, vocab {tok.get_vocab_size()})")


if __name__ == "__main__":
    main()
