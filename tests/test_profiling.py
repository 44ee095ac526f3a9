"""The phase timer of the step benchmark: what it attributes, and that it
leaves the timed objects as it found them."""
import time

from vrm_det.utils.profiling import PhaseTimer, median_phases


class Model:
    def features(self, seconds):
        time.sleep(seconds)
        return seconds

    def head(self):
        time.sleep(0.02)


def test_phases_are_attributed_by_label_and_call_order_and_the_rest_is_other():
    model, other = Model(), Model()
    timer = PhaseTimer()
    timer.time(model, 'features', lambda index: ('real', 'virtual')[index])
    timer.time(model, 'head', 'head')

    def step():
        assert model.features(0.01) == 0.01  # results pass through
        model.features(0.06)
        model.head()
        other.head()  # another instance of the class is not timed

    phases = timer.measure(step)
    assert 0.01 <= phases['real'] < phases['virtual'] and phases['virtual'] >= 0.06
    assert phases['head'] >= 0.02 and phases['other'] >= 0.02
    assert abs(sum(v for k, v in phases.items() if k != 'total') - phases['total']) < 1e-9
    # Call indices start again at every step (a third call would have no label).
    again = timer.measure(step)
    assert again['real'] < again['virtual']


def test_remove_restores_the_instance_and_never_touches_the_class():
    model = Model()
    timer = PhaseTimer()
    original = Model.head
    timer.time(model, 'head', 'head')
    assert 'head' in vars(model) and Model.head is original
    timer.remove()
    assert 'head' not in vars(model) and Model.head is original


def test_median_phases_in_milliseconds_with_missing_phases_as_zero():
    runs = [dict(a=0.001, total=0.003), dict(a=0.003, b=0.002, total=0.005),
            dict(a=0.002, total=0.004)]
    assert median_phases(runs) == {'a': 2.0, 'total': 4.0, 'b': 0.0}
