"""KeyRefusal with several IT Glue instances: nothing can land only when every instance
refuses its key; a delivery that lands clears only its own instance's refusal."""

from __future__ import annotations

from pipeline.runner.refusal import KeyRefusal


def test_one_refusing_instance_of_two_does_not_stop_the_run() -> None:
    refusal = KeyRefusal(instances=2)
    refusal.report(1, "IT Glue instance 'sandbox' refused the API key", "sandbox")
    refusal.report(2, "IT Glue instance 'sandbox' refused the API key", "sandbox")
    assert not refusal.event.is_set()
    assert refusal.held_records() == [1, 2]
    assert refusal.refused() == {"sandbox": "IT Glue instance 'sandbox' refused the API key"}

    refusal.report(3, "IT Glue instance 'prod' refused the API key", "prod")
    assert refusal.event.is_set()  # every instance refuses: nothing can land
    assert (
        refusal.reason is not None and "'prod'" in refusal.reason and "'sandbox'" in refusal.reason
    )

    refusal.landed("prod")  # prod's key works again: only the sandbox's records stay held
    assert not refusal.event.is_set()
    assert refusal.held_records() == [1, 2]
    assert list(refusal.refused()) == ["sandbox"]


def test_the_single_instance_form_stops_at_the_first_refusal() -> None:
    refusal = KeyRefusal()
    refusal.report(7, "IT Glue refused the API key")
    assert refusal.event.is_set()
    refusal.landed()
    assert (refusal.event.is_set(), refusal.held_records(), refusal.reason) == (False, [], None)
