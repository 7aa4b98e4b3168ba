from . import cluster_tasks


def get_task_modules():
    return [cluster_tasks]
