from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from ...models import ApiToken


class Command(BaseCommand):
    help = "Issue an API token for a staff user and print its key once (send it as 'Authorization: Bearer KEY')."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="", help="a label to recognise the token by")

    def handle(self, *args, username, name, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no user named '{username}'")
        if not user.is_staff:
            raise CommandError(f"'{username}' is not staff; only staff may upload or see jobs")
        _, key = ApiToken.issue(user=user, name=name)
        self.stdout.write(key)
