"""The synthetic demo clinic: a seeded generator of FHIR resources and the seeder that writes
them through the gate (`carevault demo`). Every person in it is made up."""
