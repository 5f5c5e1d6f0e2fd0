// One request's activity, paged forward with @connection; @refetchable on
// AccessRequest makes Relay refetch it through `node(id:)`.
import { graphql } from 'react-relay';

export const requestActivityFragment = graphql`
  fragment RequestActivity_request on AccessRequest
  @argumentDefinitions(
    count: { type: "Int", defaultValue: 5 }
    cursor: { type: "String" }
  )
  @refetchable(queryName: "RequestActivityPaginationQuery") {
    id
    status
    activity(first: $count, after: $cursor)
      @connection(key: "RequestActivity_activity") {
      edges {
        node {
          id
          cursor
          at
          resource
          action
          allowed
        }
      }
    }
  }
`;
