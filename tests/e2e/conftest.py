from tests.integration.broker_fixtures import *
