from lime_task import task


@task
def noop(app, number: int = 0):
    return number
