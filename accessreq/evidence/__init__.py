"""What a recertification campaign shows and proves: progress for its dashboard
(:mod:`.dashboard`), and the evidence report with every item's decision, who took it, when, with
which second factor, and whether the connector confirmed the remediation (:mod:`.report` for the
content, CSV and HTML; :mod:`.pdf`; :mod:`.export` for signed, audited downloads).
"""
