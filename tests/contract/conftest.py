from tests.contract.firestore_fixtures import *
