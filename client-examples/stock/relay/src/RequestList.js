// The newest requests first, paged backward (`last`/`before`) with
// @connection; @refetchable on Query.
import { graphql } from 'react-relay';

export const requestListFragment = graphql`
  fragment RequestList_query on Query
  @argumentDefinitions(
    count: { type: "Int", defaultValue: 2 }
    cursor: { type: "String" }
  )
  @refetchable(queryName: "RequestListPaginationQuery") {
    accessRequests(last: $count, before: $cursor)
      @connection(key: "RequestList_accessRequests") {
      edges {
        node {
          id
          createdAt
          ...RequestActivity_request
        }
      }
    }
  }
`;
