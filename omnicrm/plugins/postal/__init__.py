"""Postal DM: a dispatcher for ``Medium.POSTAL`` that writes what a print service takes.

Modules: ``settings`` (where the files go, the CSV's columns and encoding, the label
sheet), ``address`` (a recipient from a message: the postal code checked, the label's
lines), ``labels`` (the PDF of address labels, reportlab with a Japanese CID font),
``runs`` (a campaign run's journal and files, written atomically), ``plugin`` (the
hooks), ``sandbox`` (a temporary directory for the tests and the demo).
"""
