"""Join validation before training (spec §1.3, "Validating Join Accuracy").

``validate_join`` looks at one declared relationship (child = many side, parent = one side) with
the two tables as pandas frames and reports, as plain-words checks with example rows:

* key_types — do the key columns hold the same kind of value (int ↔ int, str ↔ str)? A mismatch
  matches nothing, as in a warehouse; the report says which CAST would fix it and what coverage
  the cast would give (``key_types``; the type vocabulary is ``featrix_model.keys``).
* coverage — share of child rows whose key finds a parent (warn / error thresholds from the spec).
* key_nulls — child rows with a NULL key (kept, never dropped, but counted).
* cardinality — declared vs observed; a "many_to_one" whose parent repeats keys multiplies rows,
  explained by its cause: duplicate parent rows (the condition already uses the parent's whole
  primary key) or the primary-key column(s) the condition leaves out, named. When nothing joins
  the check is not passed (WARN): it "could not be checked", with why and the fix.
* duplicate_parent_keys — duplicates in the parent's primary key and in its join key.
* temporal_consistency — only when both sides carry time: child rows outside the parent's range.

Example rows and key values in messages mask personal data (emails, phone numbers, person names:
``featrix_pipeline.privacy``) unless the caller allows the column (``allowed_personal_data``).

Distribution shift (KL divergence of each child column, and target class balance, between all
child rows and the rows that joined) is reported as metadata, not as a failing check (``shift``).

Everything is vectorised: each key is factorised into integer codes once (``codes``) and the rest
is bincount arithmetic, so 336,776 flights × 26,115 weather rows take well under a second. Pure
pandas/numpy. ``validate`` runs the checks (``checks``) in order; ``report`` holds the result types.
"""

from featrix_pipeline.joins.report import ERROR, WARN, CheckOutcome, JoinReport
from featrix_pipeline.joins.validate import validate_join

__all__ = ["ERROR", "WARN", "CheckOutcome", "JoinReport", "validate_join"]
