"""The cohort commitment of a compute-to-data job: it binds the job, the salt, every record with its
ciphertext hash and held-out flag, in order; its opening survives the node's file and an auditor's
check fails on any change."""

from __future__ import annotations

from dataclasses import replace

import pytest
from eth_utils import keccak

from aidoc.training.cohort import CohortError, CohortMember, CohortOpening, held_out_mask, verify_cohort

MEMBERS = [CohortMember(3, b"\x03" * 32, False), CohortMember(5, b"\x05" * 32, True), CohortMember(8, b"\x08" * 32, False)]


def test_the_commitment_is_the_documented_keccak():
    opening = CohortOpening(7, b"\x99" * 32, tuple(MEMBERS))
    expected = keccak((7).to_bytes(32, "big") + b"\x99" * 32 + b"".join(
        m.record_id.to_bytes(32, "big") + m.ciphertext_hash + bytes([int(m.held_out)]) for m in MEMBERS))
    assert opening.commitment() == expected


def test_an_opening_written_by_the_node_verifies_and_any_change_does_not(tmp_path):
    opening = CohortOpening.new(7, MEMBERS)
    commitment = opening.commitment()
    loaded = CohortOpening.from_json(opening.save(tmp_path).read_text())
    hashes = {m.record_id: m.ciphertext_hash for m in MEMBERS}
    assert loaded == opening and verify_cohort(loaded, commitment, [8, 5, 3], hashes)
    flipped = replace(MEMBERS[1], held_out=False)
    for changed in (replace(opening, salt=b"\x00" * 32), replace(opening, job_id=8),
                    replace(opening, members=(MEMBERS[0], flipped, MEMBERS[2])),
                    replace(opening, members=tuple(MEMBERS[:2]))):
        assert not verify_cohort(changed, commitment)
    assert not verify_cohort(opening, commitment, [3, 5], hashes)  # the chain names other records
    assert not verify_cohort(opening, commitment, None, {**hashes, 5: b"\x06" * 32})  # another ciphertext


def test_two_openings_of_the_same_cohort_have_different_salts_and_commitments():
    assert CohortOpening.new(7, MEMBERS).commitment() != CohortOpening.new(7, MEMBERS).commitment()


def test_a_job_run_again_keeps_the_opening_of_the_first_commitment(tmp_path):
    first, again = CohortOpening.new(7, MEMBERS), CohortOpening.new(7, MEMBERS)
    first_path, again_path = first.save(tmp_path), again.save(tmp_path)
    assert first_path != again_path and first_path.name == CohortOpening.file_name(7, first.commitment())
    assert CohortOpening.from_json(first_path.read_text()) == first


def test_a_file_that_is_not_an_opening_is_one_clear_error():
    with pytest.raises(CohortError, match="not a cohort opening"):
        CohortOpening.from_json('{"job_id": 1}')


def test_the_held_out_split_is_seeded_and_never_empty():
    assert (held_out_mask(10, 4) == held_out_mask(10, 4)).all()
    assert held_out_mask(10, 4).sum() == 2 and held_out_mask(2, 1).sum() == 1
