from django.apps import AppConfig


class TrainingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "training"
    verbose_name = "Training"

    def ready(self) -> None:
        # the run tasks register themselves with the run lifecycle, and the rounds subscribe
        # to its run_finished signal: the lifecycle imports neither
        from training import rounds, tasks  # noqa: F401
