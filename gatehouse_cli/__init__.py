"""The ``gatehouse`` command for CI pipelines: exchange the job's identity token, ask for an
authorization, open a deployment approval and wait for it. Standard library only, so it runs in
any CI image with Python 3.11+, without Django or the portal's dependencies."""
