# The "Declare a task" block of the tasks reference, with the two helpers it leaves out.
from lime_task import task


def _get_company_object(app, id):
    return {"id": id, "name": f"Company {id}", "application": app.name}


def _concat_description(company, props):
    return ", ".join(str(company[prop]) for prop in props)


@task
def get_lime_company(app, id, props):
    company = _get_company_object(app, id)
    description = _concat_description(company, props)

    return dict(description=description)
