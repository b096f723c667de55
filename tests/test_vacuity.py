"""A certificate is vacuous when it says no more than guessing the most frequent class."""

import dataclasses

import numpy as np
import pytest

from genbounds.bounds import Certificate, pac_bayes_certificate, pay_for_choice, union_minimum
from genbounds.estimators.data import Dataset
from genbounds.estimators.snn.certification import guess_risk


def test_vacuous_relative_to_guessing():
    cert = pac_bayes_certificate("seeger", 0.88, 2.0, 1000, 0.025)
    assert 0.9 < cert.value < 1.0 and not cert.vacuous            # no task known: only >= 1 is vacuous
    ten = dataclasses.replace(cert, guess_risk=0.9)
    assert ten.vacuous                                            # ten balanced classes: a guess errs 0.9
    assert not dataclasses.replace(cert, guess_risk=0.95).vacuous
    assert Certificate.from_dict(ten.to_dict()) == ten and ten.to_dict()["vacuous"] is True
    # a paid choice and a union keep the task's guessing level
    assert pay_for_choice(ten, 3, "s", "three settings").guess_risk == 0.9
    assert union_minimum([ten, ten]).guess_risk == 0.9
    with pytest.raises(ValueError, match="'guess_risk'"):
        dataclasses.replace(cert, guess_risk=1.5)


def test_guess_risk_is_the_most_frequent_labels_complement():
    y = np.array([0] * 50 + [1] * 30 + [2] * 20, dtype=np.int32)
    data = Dataset(np.zeros((100, 1, 1, 1), np.float32), y, 3, "toy")
    assert guess_risk(data) == pytest.approx(0.5)
