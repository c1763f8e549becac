"""The fresh-process halves of the resume tests (see tests/test_resume.py).

resume_runs.py keras FOLDER          load FOLDER/<kind>.keras, train one more epoch,
                                     write FOLDER/<kind>.resumed.npz
resume_runs.py backup WORK           the ResumableFit run of `resume_setup.backup_run`,
                                     killed by itself mid-epoch
"""

import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
TESTS = pathlib.Path(__file__).resolve().parents[1]
sys.path[:0] = [str(TESTS), str(TESTS.parent)]

from threads import configure_threads  # noqa: E402

configure_threads()  # the test process's threads, so both processes compute alike

import keras  # noqa: E402
import numpy as np  # noqa: E402
import resume_setup  # noqa: E402

import mi_keras.mi  # noqa: E402, F401  (registers the estimators for load_model)
import mi_keras.models  # noqa: E402, F401


def continue_from_keras(folder: pathlib.Path) -> None:
    for kind in resume_setup.KINDS:
        model = keras.models.load_model(folder / f"{kind}.keras")
        resume_setup.fit_epochs(model, 1)
        state = resume_setup.training_state(model)
        state["trainable_count"] = np.array(len(model.trainable_variables))
        np.savez(folder / f"{kind}.resumed.npz", **state)


def main(argv: list[str]) -> None:
    if argv[0] == "keras":
        continue_from_keras(pathlib.Path(argv[1]))
    elif argv[0] == "backup":
        resume_setup.backup_run(pathlib.Path(argv[1]), kill=True)
    else:
        raise SystemExit(f"unknown mode {argv[0]!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
