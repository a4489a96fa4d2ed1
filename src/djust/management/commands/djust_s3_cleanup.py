"""``manage.py djust_s3_cleanup``: abort S3 multipart uploads that were abandoned.

A server that dies mid-upload leaves its multipart upload open in the bucket, and S3 bills its
parts until someone aborts it. Run this from cron (or give the bucket a lifecycle rule with
``AbortIncompleteMultipartUpload``): it aborts uploads under the writer's prefix started longer
ago than ``--hours``, longer than any upload of yours takes.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Abort S3 multipart uploads under the upload prefix that are older than --hours."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--hours", type=float, default=24.0, help="Age to abort at (24).")
        parser.add_argument(
            "--prefix", default=None, help="Storage name prefix of the uploads ('uploads/')."
        )
        parser.add_argument("--dry-run", action="store_true", help="List them; abort nothing.")

    def handle(self, *args: Any, **options: Any) -> None:
        from djust.uploads import s3

        if options["hours"] < 0:
            raise CommandError("--hours must be 0 or more")
        age = timedelta(hours=options["hours"])
        prefix = s3.PREFIX if options["prefix"] is None else options["prefix"]
        if options["dry_run"]:
            found = list(s3.abandoned_uploads(age, prefix=prefix))
        else:
            found = s3.abort_abandoned_uploads(age, prefix=prefix)
        for upload in found:
            self.stdout.write(f"{upload['Key']} {upload['UploadId']} {upload['Initiated']}")
        verb = "would abort" if options["dry_run"] else "aborted"
        self.stdout.write(f"{verb} {len(found)} multipart upload(s) older than {age}")
