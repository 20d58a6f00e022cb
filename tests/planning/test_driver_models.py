"""IDM and MOBIL against cases computed by hand from their published equations."""

from __future__ import annotations

import dataclasses
import math
from types import SimpleNamespace

import numpy as np
import pytest

from drivelab.planning.driver_models import (NOBODY, IDMParams, MOBILParams, Neighbour, equilibrium_gap_m,
                                             idm_acceleration, mobil_assessment, mobil_assessments)

IDM = IDMParams(desired_speed_mps=30.0, time_headway_s=1.5, min_gap_m=2.0, max_accel_mps2=1.5,
                comfort_decel_mps2=2.0, exponent=4.0)


def test_idm_on_a_free_road():
    assert idm_acceleration(0.0, math.inf, 0.0, IDM) == pytest.approx(1.5)  # from standstill: a_max
    assert idm_acceleration(15.0, math.inf, 0.0, IDM) == pytest.approx(1.5 * (1 - 0.5**4))  # 1.40625
    assert idm_acceleration(30.0, math.inf, 0.0, IDM) == pytest.approx(0.0, abs=1e-12)  # at v0
    assert idm_acceleration(33.0, math.inf, 0.0, IDM) == pytest.approx(1.5 * (1 - 1.1**4))  # above v0: brakes


def test_idm_closing_in_on_a_slower_leader():
    # v = 20, leader at 10 m/s, gap 30 m: s* = 2 + 20*1.5 + 20*10 / (2*sqrt(1.5*2)) = 32 + 57.7350 = 89.7350
    desired = 2.0 + 30.0 + 200.0 / (2.0 * math.sqrt(3.0))
    expected = 1.5 * (1 - (20 / 30) ** 4 - (desired / 30.0) ** 2)
    assert expected == pytest.approx(-12.2169, abs=1e-3)  # 1.5 * (1 - 0.19753 - 2.99117²)
    assert idm_acceleration(20.0, 30.0, 10.0, IDM) == pytest.approx(expected)
    # A leader pulling away (approach rate -10 m/s): the dynamic part, 30 - 57.7 m, is floored at 0, so s* = s0.
    assert idm_acceleration(20.0, 40.0, 30.0, IDM) == pytest.approx(1.5 * (1 - (20 / 30) ** 4 - (2.0 / 40.0) ** 2))


def test_idm_holds_the_equilibrium_gap_and_queues_at_the_minimum_gap():
    gap = equilibrium_gap_m(20.0, IDM)
    assert gap == pytest.approx(32.0 / math.sqrt(1 - (2 / 3) ** 4))  # (s0 + vT) / sqrt(1 - (v/v0)^4) = 35.33 m
    assert idm_acceleration(20.0, gap, 20.0, IDM) == pytest.approx(0.0, abs=1e-12)
    assert idm_acceleration(0.0, 2.0, 0.0, IDM) == pytest.approx(0.0)  # stopped at s0 behind a stopped car
    assert idm_acceleration(0.0, 1.0, 0.0, IDM) == pytest.approx(1.5 * (1 - 4.0))  # closer than s0: backs off
    assert equilibrium_gap_m(30.0, IDM) == math.inf


def test_idm_is_vectorised_over_vehicles():
    speeds, gaps, leads = np.array([0.0, 20.0, 30.0]), np.array([math.inf, 30.0, math.inf]), np.array([0.0, 10.0, 0.0])
    batch = idm_acceleration(speeds, gaps, leads, IDM)
    assert batch.shape == (3,)
    np.testing.assert_allclose(batch, [idm_acceleration(v, g, l, IDM) for v, g, l in zip(speeds, gaps, leads)])


def test_bad_idm_and_mobil_parameters_name_the_key():
    with pytest.raises(ValueError, match="IDM comfort_decel_mps2 must be a finite number > 0, got 0"):
        IDMParams(comfort_decel_mps2=0)
    with pytest.raises(ValueError, match="IDM min_gap_m must be a finite number >= 0, got -1"):
        IDMParams(min_gap_m=-1)
    with pytest.raises(ValueError, match=r"MOBIL politeness must be in \[0, 1\], got 1.5"):
        MOBILParams(politeness=1.5)


MOBIL = MOBILParams(politeness=0.5, threshold_mps2=0.2, safe_decel_mps2=4.0)


def test_mobil_overtakes_a_slow_leader_into_a_free_lane():
    # 25 m/s behind a truck at 15 m/s, 40 m ahead; the target lane is empty; nobody behind.
    verdict = mobil_assessment(25.0, 5.0, leader=Neighbour(40.0, 15.0), follower=NOBODY, target_leader=NOBODY,
                               target_follower=NOBODY, idm=IDM, mobil=MOBIL)
    a_now = idm_acceleration(25.0, 40.0, 15.0, IDM)
    a_free = idm_acceleration(25.0, math.inf, 0.0, IDM)
    assert verdict.change and verdict.safe
    assert verdict.incentive == pytest.approx(a_free - a_now - 0.2)  # nobody else gains or loses


def test_mobil_refuses_a_change_that_makes_the_new_follower_brake_hard():
    # Same overtake, but a car at 30 m/s is 5 m behind in the target lane: it would brake at ~ -28 m/s².
    fast_follower = Neighbour(5.0, 30.0)
    verdict = mobil_assessment(25.0, 5.0, leader=Neighbour(40.0, 15.0), follower=NOBODY, target_leader=NOBODY,
                               target_follower=fast_follower, idm=IDM, mobil=MOBIL)
    expected = idm_acceleration(30.0, 5.0, 25.0, IDM)
    assert expected < -4.0
    assert not verdict.safe and not verdict.change
    assert verdict.new_follower_accel == pytest.approx(expected)


def test_mobil_politeness_weighs_what_the_others_gain_and_lose():
    # A small gain for the changer, bought with the new follower's braking: selfish changes, polite does not.
    leader, target_follower = Neighbour(60.0, 22.0), Neighbour(25.0, 25.0)
    args = dict(leader=leader, follower=NOBODY, target_leader=NOBODY, target_follower=target_follower, idm=IDM)
    selfish = mobil_assessment(25.0, 5.0, mobil=MOBILParams(politeness=0.0, threshold_mps2=0.2), **args)
    polite = mobil_assessment(25.0, 5.0, mobil=MOBILParams(politeness=1.0, threshold_mps2=0.2), **args)
    a_c = idm_acceleration(25.0, 60.0, 22.0, IDM)
    a_c_new = idm_acceleration(25.0, math.inf, 0.0, IDM)
    # The new follower: free road before (no target leader), behind the changer 25 m ahead after.
    a_n = idm_acceleration(25.0, math.inf, 0.0, IDM)
    a_n_new = idm_acceleration(25.0, 25.0, 25.0, IDM)
    assert selfish.incentive == pytest.approx(a_c_new - a_c - 0.2) and selfish.change
    assert polite.incentive == pytest.approx(a_c_new - a_c + (a_n_new - a_n) - 0.2) and not polite.change
    assert polite.safe  # it is only impolite, not unsafe


def test_the_old_follower_gains_when_the_changer_leaves():
    # The old follower, 10 m behind, follows the changer's leader across the changer's length and gaps after.
    verdict = mobil_assessment(20.0, 5.0, leader=Neighbour(20.0, 20.0), follower=Neighbour(10.0, 20.0),
                               target_leader=NOBODY, target_follower=NOBODY, idm=IDM,
                               mobil=MOBILParams(politeness=1.0, threshold_mps2=0.0))
    a_o = idm_acceleration(20.0, 10.0, 20.0, IDM)
    a_o_new = idm_acceleration(20.0, 10.0 + 5.0 + 20.0, 20.0, IDM)
    a_c, a_c_new = idm_acceleration(20.0, 20.0, 20.0, IDM), idm_acceleration(20.0, math.inf, 0.0, IDM)
    assert verdict.incentive == pytest.approx((a_c_new - a_c) + (a_o_new - a_o))


def test_keep_right_bias_favours_the_right_lane():
    args = dict(leader=NOBODY, follower=NOBODY, target_leader=NOBODY, target_follower=NOBODY, idm=IDM)
    rule = MOBILParams(threshold_mps2=0.1, keep_right_bias_mps2=0.3)
    assert mobil_assessment(25.0, 5.0, to_the_right=True, mobil=rule, **args).change  # 0 + 0.3 - 0.1 > 0
    assert not mobil_assessment(25.0, 5.0, to_the_right=False, mobil=rule, **args).change  # 0 - 0.3 - 0.1


def test_mobil_for_many_vehicles_at_once_agrees_with_one_by_one():
    """mobil_assessments (the traffic's MOBIL turns, all drivers due at once) against mobil_assessment, on random
    situations: free lanes, overlapping neighbours (negative gaps), each driver's own desired speed, both sides."""
    rng = np.random.default_rng(0)
    n = 400

    def neighbours():
        gap = np.where(rng.random(n) < 0.2, math.inf, rng.uniform(-3.0, 120.0, n))
        return Neighbour(gap, np.where(np.isfinite(gap), rng.uniform(10.0, 30.0, n), 0.0))

    speed, length, desired = rng.uniform(10.0, 30.0, n), rng.uniform(4.0, 5.5, n), rng.uniform(20.0, 26.0, n)
    leader, follower, target_leader, target_follower = neighbours(), neighbours(), neighbours(), neighbours()
    to_the_right = rng.random(n) < 0.5
    mobil = MOBILParams(keep_right_bias_mps2=0.1)
    many = mobil_assessments(speed, length, leader=leader, follower=follower, target_leader=target_leader,
                             target_follower=target_follower, to_the_right=to_the_right,
                             idm=SimpleNamespace(**{**dataclasses.asdict(IDMParams()), "desired_speed_mps": desired}),
                             mobil=mobil, follower_idm=IDMParams())
    for i in range(n):
        pick = lambda neighbour: Neighbour(float(neighbour.gap_m[i]), float(neighbour.speed_mps[i]))  # noqa: E731
        one = mobil_assessment(float(speed[i]), float(length[i]), leader=pick(leader), follower=pick(follower),
                               target_leader=pick(target_leader), target_follower=pick(target_follower),
                               to_the_right=bool(to_the_right[i]), idm=IDMParams(desired_speed_mps=float(desired[i])),
                               mobil=mobil, follower_idm=IDMParams())
        assert (bool(many.change[i]), bool(many.safe[i])) == (one.change, one.safe), i
        assert many.incentive[i] == pytest.approx(one.incentive, rel=1e-12, abs=1e-9)
        assert many.new_follower_accel[i] == pytest.approx(one.new_follower_accel, rel=1e-12, abs=1e-9)
    assert 0.1 < many.change.mean() < 0.9 and 0.1 < many.safe.mean() < 0.9  # both verdicts are exercised
