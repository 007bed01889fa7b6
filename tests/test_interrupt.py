"""SIGINT and SIGTERM as a request to stop: the first waits for a safe point (or cuts short a
stretch marked interruptible), the second raises at once; the handlers before come back."""

from __future__ import annotations

import os
import signal

import pytest

from eqpop.interrupt import Interrupted, StopRequest


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_the_first_signal_waits_for_a_safe_point_the_second_raises_at_once(signum, code):
    before = signal.getsignal(signum)
    with StopRequest() as stop:
        os.kill(os.getpid(), signum)  # delivered here, between two bytecodes: noted only
        assert stop.signum == signum
        with pytest.raises(Interrupted) as first:
            stop.check()
        assert not first.value.at_once and first.value.exit_code == code
        with pytest.raises(Interrupted) as second:
            os.kill(os.getpid(), signum)
        assert second.value.at_once and second.value.name == signal.Signals(signum).name
    assert signal.getsignal(signum) == before


def test_an_interruptible_stretch_is_cut_short_by_the_first_signal():
    with StopRequest() as stop:
        with pytest.raises(Interrupted) as cut, stop.interruptible():
            os.kill(os.getpid(), signal.SIGTERM)
            pytest.fail("the signal did not cut the stretch short")
        assert not cut.value.at_once
        with pytest.raises(Interrupted), stop.interruptible():  # entered after: ends at once
            pytest.fail("entered although a stop was asked")


def test_install_again_takes_the_signals_back():
    """``ray.init`` sets a SIGTERM handler of its own: installing again wins it back, and the
    handler from before both is what comes back at the end."""
    before = signal.getsignal(signal.SIGTERM)
    with StopRequest() as stop:
        signal.signal(signal.SIGTERM, lambda *_: None)
        stop.install()
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.signum == signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) == before
