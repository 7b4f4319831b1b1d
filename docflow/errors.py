"""Errors of the docflow package: one branch under yinxin's common root.

Every error carries its data (document id, step, user, the list of problems a
guard found) so callers never parse messages.
"""
from __future__ import annotations

from pki.errors import YinxinError


class DocflowError(YinxinError):
    """Errors raised by the docflow package."""


class DirectoryError(DocflowError):
    """An organisation file is invalid, or names a person, role or organisation that does not exist."""


class RouteError(DocflowError):
    """A route file is invalid, or a route cannot work for an organisation or a document."""


class DocumentNotFound(DocflowError):
    """No document (or delivery) with that id."""


class ElementError(DocflowError):
    """A GB/T 9704 element is missing or not acceptable (classified content, unknown urgency)."""


class AttachmentError(DocflowError):
    """An attachment is the body itself, a duplicate, empty, or a declared attachment is missing."""


class NotAllowed(DocflowError):
    """The user may not do this now: out of turn, not in the role, approving their own draft."""


class FlowStateError(DocflowError):
    """The document is not in a state where this operation applies (not signed off, not sealed, opened)."""


class IntegrityFailure(DocflowError):
    """Stored bytes no longer match their recorded digests, or the sealed bytes do not extend the
    signed-off bytes.  Exit code 1: checked, and wrong."""

    exit_code = 1


class VerificationFailed(DocflowError):
    """A seal on the document does not verify, or is not the sending organisation's seal."""

    exit_code = 1


class ChangedMeanwhile(DocflowError):
    """Someone else acted on the document between this operation's checks and its write."""
