"""A checkpoint's position in the epoch bounded against the data it resumes on (issue 26, Low
#11): ``batch: 1000000`` trained an "epoch" on no image, logged as loss 0 and 100% error."""
import pytest
from test_hostile_checkpoint import _with_meta, good, trainer_for  # noqa: F401


@pytest.mark.parametrize("change, message", [
    (dict(batch=1000000), "batch (expected an integer in [0, 3], the batches of an epoch of 12 images in batches of 4, "
                          "vs 1000000)"),
    (dict(batch=1, running={"loss_sum": 1.0, "seen": 5, "correct1": 0, "correct5": 0}),
     "running.seen (expected an integer in [0, 4], the images of its 1 batches, vs 5)"),
    (dict(batch=2, running={"loss_sum": 1.0, "seen": 8, "correct1": 9, "correct5": 9}),
     "running.correct1 (expected an integer in [0, 8], the images seen, vs 9)"),
])
def test_a_position_beyond_the_data_is_refused_before_training(good, tmp_path, change, message):
    path = _with_meta(good, str(tmp_path / "moved.npz"), lambda m: dict(m, epoch=0, **change))
    trainer = trainer_for(tmp_path / "run")
    with pytest.raises(ValueError) as info:
        trainer.fit(resume_from=path, echo=lambda *_: None)
    assert str(info.value) == f"{path}: bad checkpoint meta: {message}"
    assert trainer.step == 0 and not (tmp_path / "run" / "metrics.jsonl").exists()

