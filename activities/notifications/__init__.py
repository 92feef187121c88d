"""Customer notifications (SPEC 2.6): templates, MIME messages, SMTP delivery, Postgres outbox.

Modules (import from them directly; names are not re-exported here so that
``activities.notifications.render`` stays the module, not the function):

- ``render``   templates -> subject/text/html; language choice; locale formatting of the context
- ``message``  sender per class, header validation, the ``EmailMessage``
- ``mailer``   pooled aiosmtplib client with transient/permanent error classification
- ``outbox``   at-most-once delivery through the ``notifications`` table; finance resend
- ``preview``  sample messages for ``dunning notifications preview``
- ``errors``   the exception hierarchy shared by the above
"""
