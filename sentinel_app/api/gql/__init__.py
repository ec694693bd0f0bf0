"""Resolvers of the GraphQL API, one module per area; the schema is `graphql/schema.graphql`."""
