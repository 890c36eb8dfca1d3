"""A real ``trl.GRPOTrainer`` trains two steps on CPU with our reward (the ``train`` extra).

The policy is a tiny random text-only Qwen2 (the byte-level tokenizer of the tiny StAR test
models); the dataset has the columns ``reasonseg-x data rl-export`` writes except the image (a
text model cannot take one; the ``box`` segmenter needs no pixels). What is checked: TRL calls the
reward with the batch and the ``truth`` column, our terms reach TRL's logs through ``log_metric``,
and the rewards TRL records are within the preset's bounds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("scipy")
trl = pytest.importorskip("trl")
pytest.importorskip("torch")


def test_grpo_trainer_two_steps_with_our_reward(tmp_path: Path) -> None:
    import torch
    from datasets import Dataset
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from reasonseg_x import rewards
    from reasonseg_x.star.tiny import VOCAB_SIZE, build_tokenizer

    torch.manual_seed(0)
    tokenizer = build_tokenizer()
    model = Qwen2ForCausalLM(Qwen2Config(vocab_size=VOCAB_SIZE, hidden_size=32, intermediate_size=64,
                                         num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
                                         max_position_embeddings=512, tie_word_embeddings=True))
    mask = np.zeros((40, 40), dtype=bool)
    mask[5:20, 8:30] = True
    truth = rewards.encode_truth([mask])
    data = Dataset.from_list([{"prompt": f"Please find the object number {i}.", "truth": truth} for i in range(4)])
    reward = rewards.load("star-stage1", segmenter="box")
    seen: list[int] = []
    inner = reward.for_trl(image_column=None)

    def reward_fn(**kwargs):  # noqa: ANN003, ANN202 - what TRL passes, recorded
        seen.append(len(kwargs["completions"]))
        return inner(**kwargs)

    reward_fn.__name__ = inner.__name__
    config = trl.GRPOConfig(output_dir=str(tmp_path / "out"), per_device_train_batch_size=4, num_generations=4,
                            max_completion_length=12, max_steps=2, logging_steps=1, learning_rate=1e-4,
                            report_to=[], use_cpu=True, save_strategy="no", seed=0, temperature=1.0)
    trainer = trl.GRPOTrainer(model=model, reward_funcs=[reward_fn], args=config, train_dataset=data,
                              processing_class=tokenizer)
    trainer.train()
    assert trainer.state.global_step == 2
    assert seen and all(n == 4 for n in seen)
    logs = [entry for entry in trainer.state.log_history if "star-stage1/accuracy" in entry]
    assert logs, trainer.state.log_history
    low, high = reward.bounds
    for entry in trainer.state.log_history:
        if "reward" in entry:
            assert low <= entry["reward"] <= high
