"""The one disclosure path: everything that leaves a tenant passes `Disclosures.disclose`.

service.py runs the flow (facts → the basis's checker → segmentation → minimum necessary →
ledger, notice and audit in one transaction); checkers*.py hold one checker per basis family
behind a small protocol; legal.py files BAAs and legal orders; notices.py holds and releases
the patient's notice; ledger.py (accounting of disclosures) and ../segmentation.py are the
ledger's.
"""
