"""A tiny word-level tokenizer trained in-process, for tiny random adapter checkpoints.

Why: tests and benchmarks need a complete, loadable checkpoint (tokenizer files included)
without a hub download. The tokenizer is trained with the ``tokenizers`` library on a few hundred
robot-task words, wrapped in ``PreTrainedTokenizerFast`` and saved like any published one. Its
last ``n_action_tokens`` ids are reserved action tokens, as OpenVLA reserves the last 256 ids of
the Llama vocabulary.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

PAD, UNK, BOS, EOS, IMAGE = "<pad>", "<unk>", "<s>", "</s>", "<image>"
SPECIAL_TOKENS = (PAD, UNK, BOS, EOS, IMAGE)

_VERBS = (
    "pick put place push pull lift open close move slide stack unstack insert rotate turn grasp "
    "release drop wipe pour fold press flip hang sweep take bring carry reach hold set knock "
    "tilt twist shake"
)
_OBJECTS = (
    "cube block peg hole cup mug bowl plate spoon fork knife bottle can box lid drawer door "
    "cabinet microwave oven sink faucet towel sponge cloth marker pen book shelf tray basket "
    "bin ball toy banana apple orange carrot lemon corn eggplant pot pan kettle switch button "
    "handle knob cable plug socket screw bolt nut gear tool hammer brush rag table counter "
    "stove fridge chair target goal object item thing top bottom side edge corner center"
)
_ADJECTIVES = (
    "red green blue yellow orange purple pink black white gray brown small large big tiny "
    "tall short long round square left right front back upper lower near far empty full "
    "open closed clean dirty hot cold soft hard heavy light wooden metal plastic glass first "
    "second third last other same new old middle"
)
_FUNCTION_WORDS = (
    "in on into onto from to of the a an and or with at by near under over above below "
    "behind beside between inside outside up down out off it its then until while slowly "
    "gently carefully quickly all both each every one two three four five"
)
_PROMPT_WORDS = "In Out What action should the robot take ? : . , ' -"


def tiny_corpus() -> list[str]:
    """A few hundred words covering the prompt template and typical instructions."""
    words = " ".join((_VERBS, _OBJECTS, _ADJECTIVES, _FUNCTION_WORDS, _PROMPT_WORDS)).split()
    return [" ".join(words[i : i + 12]) for i in range(0, len(words), 12)]


def build_tiny_tokenizer(
    n_action_tokens: int = 256, extra_text: Iterable[str] = ()
) -> PreTrainedTokenizerFast:
    """Train a WordLevel tokenizer; its last ``n_action_tokens`` ids are ``<act_i>`` tokens."""
    trained = Tokenizer(models.WordLevel(unk_token=UNK))
    trained.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.WordLevelTrainer(special_tokens=list(SPECIAL_TOKENS), min_frequency=1)
    trained.train_from_iterator([*tiny_corpus(), *extra_text], trainer=trainer)
    vocab = dict(sorted(trained.get_vocab().items(), key=lambda item: item[1]))
    for i in range(n_action_tokens):  # appended to the model vocabulary: the last ids
        vocab[f"<act_{i}>"] = len(vocab)
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token=PAD,
        unk_token=UNK,
        bos_token=BOS,
        eos_token=EOS,
        extra_special_tokens={"image_token": IMAGE},
        padding_side="left",
    )
