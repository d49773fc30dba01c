"""factory_boy factories for the domain models."""

from __future__ import annotations

from datetime import timedelta

import factory
from django.contrib.auth.models import Group

from accessreq.models import Entitlement, Environment, RiskTier, Scope, System
from portal.models import Team, User

PASSWORD = "correct horse battery staple"


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Team {n}")
    slug = factory.Sequence(lambda n: f"team-{n}")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"person{n}@example.com")
    display_name = factory.Sequence(lambda n: f"Person {n}")
    team = factory.SubFactory(TeamFactory)

    @factory.post_generation
    def password(self, create: bool, extracted: str | None, **kwargs: object) -> None:
        self.set_password(extracted or PASSWORD)
        if create:
            self.save(update_fields=["password"])

    @factory.post_generation
    def groups(self, create: bool, extracted: list[str] | None, **kwargs: object) -> None:
        if create and extracted:
            for name in extracted:
                group, _ = Group.objects.get_or_create(name=name)
                self.groups.add(group)


class ScopeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Scope
        django_get_or_create = ("slug",)

    slug = "deploy"


class SystemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = System

    name = factory.Sequence(lambda n: f"service-{n}")
    slug = factory.Sequence(lambda n: f"service-{n}")


class EnvironmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Environment
        django_get_or_create = ("slug",)

    name = "prod"
    slug = "prod"
    risk_tier = RiskTier.HIGH


class EntitlementFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Entitlement
        skip_postgeneration_save = True

    system = factory.SubFactory(SystemFactory)
    environment = factory.SubFactory(EnvironmentFactory)
    name = factory.Sequence(lambda n: f"Deployer {n}")
    slug = factory.Sequence(lambda n: f"deployer-{n}")
    max_duration = timedelta(days=1)

    @factory.post_generation
    def scopes(self, create: bool, extracted: list[str] | None, **kwargs: object) -> None:
        if create:
            for slug in extracted or ["deploy"]:
                self.scopes.add(ScopeFactory(slug=slug))
